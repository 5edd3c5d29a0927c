"""Start and stop the real app (`reflex run --env prod`) on a free port with its own database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reflex_environment(**overrides: str) -> dict[str, str]:
    """The environment every Reflex command here needs, plus `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REFLEX_", "GRANIAN_")) and key != "DATABASE_URL"
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return env


def migrate(database_url: str) -> None:
    """Bring the database at `database_url` to the newest schema with alembic."""
    subprocess.run(
        [str(VENV_BIN / "alembic"), "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env=reflex_environment(DATABASE_URL=database_url),
        check=True,
        capture_output=True,
    )


class AppServer:
    """The production build of the app, front end and back end on one port."""

    def __init__(
        self,
        *,
        database_url: str,
        work_dir: Path,
        env: dict[str, str] | None = None,
        backend_only: bool = False,
    ):
        """Prepare (not start) a server for the database at `database_url`.

        Its front-end build and log go to `work_dir`, so it never touches (or
        races) the developer's own `.web` folder or another test server's.
        """
        self.database_url = database_url
        self.work_dir = work_dir
        self.log_path = work_dir / "server.log"
        self.extra_env = env or {}
        self.redis_url = self.extra_env.get("REFLEX_REDIS_URL")
        self.backend_only = backend_only
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The app's base URL, without a trailing slash."""
        return f"http://localhost:{self.port}"

    def start(self, timeout: float = 240) -> None:
        """Start the server and wait until it answers `/ping` and serves the page."""
        log = self.log_path.open("ab")
        ports = ["--backend-port", str(self.port)]
        if self.backend_only:
            ports.insert(0, "--backend-only")
        else:
            ports += ["--frontend-port", str(self.port)]
        self.process = subprocess.Popen(
            [str(VENV_BIN / "reflex"), "run", "--env", "prod", *ports],
            cwd=PROJECT_ROOT,
            env=reflex_environment(
                DATABASE_URL=self.database_url,
                REFLEX_WEB_WORKDIR=str(self.work_dir / "web"),
                REFLEX_STATES_WORKDIR=str(self.work_dir / "states"),
                **self.extra_env,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200 and (
                    self.backend_only or httpx.get(f"{self.url}/", timeout=5).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the app did not come up in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server and every process it started."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and database."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        """The last lines the server printed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
