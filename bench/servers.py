"""The servers under test: the app in a named configuration, and the bare relay.

Every server runs in its own process group and is stopped (with all it
started) when its context exits; every database and Redis index it used is
dropped or flushed then too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

from tests.support.databases import temporary_postgres_database, temporary_redis_database
from tests.support.server import PROJECT_ROOT, VENV_BIN, AppServer, free_port, migrate

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CONFIG_RE = re.compile(r"^(sqlite-1|pg-redis-(\d+))$")


def parse_configs(value: str) -> list[str]:
    """`all`, or a comma-separated list of sqlite-1 / pg-redis-N."""
    if value == "all":
        return ["sqlite-1", "pg-redis-2"]
    names = [part.strip() for part in value.split(",") if part.strip()]
    for name in names:
        if not CONFIG_RE.match(name):
            raise ValueError(f"unknown configuration {name!r} (sqlite-1, pg-redis-N or all)")
    return names


@dataclass
class Target:
    """A running server to measure."""

    name: str
    url: str
    pid: int
    kind: str  # "reflex" or "relay"
    web_dir: Path | None = None
    database_url: str | None = None
    redis_url: str | None = None
    log_path: Path | None = None
    info: dict = field(default_factory=dict)


@contextmanager
def app_in_config(name: str, work_root: Path) -> Iterator[Target]:
    """Start the app in configuration `name` (sqlite-1, pg-redis-N) on a free port."""
    match = CONFIG_RE.match(name)
    if not match:
        raise ValueError(name)
    work_dir = work_root / name
    work_dir.mkdir(parents=True, exist_ok=True)
    if name == "sqlite-1":
        database_url = f"sqlite:///{work_dir / 'chat_app.db'}"
        migrate(database_url)
        server = AppServer(database_url=database_url, work_dir=work_dir, env={"GRANIAN_WORKERS": "1"})
        with _running(server):
            yield Target(
                name=name, url=server.url, pid=server.process.pid, kind="reflex",
                web_dir=work_dir / "web", database_url=database_url, log_path=server.log_path,
                info={"database": "sqlite", "state": "memory", "workers": 1},
            )
        return
    workers = int(match.group(2))
    with temporary_postgres_database(POSTGRES_URL) as database_url, temporary_redis_database(REDIS_URL, indexes=range(1, 16)) as redis_url:
        migrate(database_url)
        server = AppServer(
            database_url=database_url,
            work_dir=work_dir,
            env={"REFLEX_REDIS_URL": redis_url, "GRANIAN_WORKERS": str(workers)},
        )
        with _running(server):
            yield Target(
                name=name, url=server.url, pid=server.process.pid, kind="reflex",
                web_dir=work_dir / "web", database_url=database_url, redis_url=redis_url,
                log_path=server.log_path,
                info={
                    "database": "postgresql",
                    "state": "memory of the worker holding the socket",
                    "redis": "socket owners, tabs, pushes handed over",
                    "workers": workers,
                },
            )


@contextmanager
def _running(server: AppServer) -> Iterator[AppServer]:
    started = time.monotonic()
    server.start()
    print(f"  {server.url} up in {time.monotonic() - started:.0f} s", flush=True)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def relay_server(work_root: Path) -> Iterator[Target]:
    """The bare python-socketio relay under granian (ASGI, one worker), on a free port."""
    work_root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = work_root / "relay.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1", "--log-level", "warning", "bench.relay:app",
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the relay exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not come up in 60 s")
            time.sleep(0.3)
        yield Target(
            name="relay", url=url, pid=process.pid, kind="relay", log_path=log_path,
            info={"server": "granian asgi, 1 worker", "socketio": "python-socketio"},
        )
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class ProcessTree:
    """CPU time and memory of a server process and all its descendants."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        found = [self.root]
        try:
            found += self.root.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        current = {}
        for process in found:
            current[process.pid] = self._known.get(process.pid, process)
        self._known = current
        return list(current.values())

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def python_pids(self) -> list[int]:
        """The tree's Python processes (what py-spy can sample)."""
        pids = []
        for process in self.processes():
            try:
                if "python" in process.name() or "python" in " ".join(process.cmdline()[:1]):
                    pids.append(process.pid)
            except psutil.Error:
                pass
        return pids

    def describe(self) -> list[str]:
        rows = []
        for process in self.processes():
            try:
                rows.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            except psutil.Error:
                pass
        return rows


def redis_used_memory(redis_url: str | None) -> int | None:
    """Redis INFO used_memory (bytes) of the server behind `redis_url`."""
    if not redis_url:
        return None
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def py_spy(pid: int, seconds: int, output: Path) -> subprocess.Popen | None:
    """Start `py-spy record` on `pid` and its subprocesses for `seconds` (raw collapsed stacks)."""
    exe = VENV_BIN / "py-spy"
    if not exe.exists():
        print("  py-spy is not installed: no profile", file=sys.stderr)
        return None
    return subprocess.Popen(
        [
            str(exe), "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
            "--rate", os.environ.get("BENCH_PYSPY_RATE", "50"),  # samples per second
            "--format", "raw", "--output", str(output), "--nonblocking",
            *os.environ.get("BENCH_PYSPY_ARGS", "").split(),  # e.g. "--gil" or "--idle"
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
