"""Redis restarts and forgets every socket and tab record: open tabs recover by themselves, without a reload."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import expect

from tests.browser.chat import page_signed_in_as, send_reliably, start_conversation
from tests.browser.ui import wait_until_interactive
from tests.conftest import create_account
from tests.support.server import AppServer, free_port, migrate


class PrivateRedis:
    """A redis-server of this test's own (the shared one is not the test's to restart)."""

    def __init__(self) -> None:
        """Pick a free port; not started yet."""
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it, in memory only, and wait until it answers."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it (everything it held is gone)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def server_with_private_redis(tmp_path_factory) -> Iterator[tuple[AppServer, PrivateRedis]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    private = PrivateRedis()
    private.start()
    folder = tmp_path_factory.mktemp("app-private-redis")
    database_url = f"sqlite:///{folder / 'chat_app.db'}"
    migrate(database_url)
    server = AppServer(
        database_url=database_url,
        work_dir=folder,
        env={"REFLEX_REDIS_URL": private.url, "GRANIAN_WORKERS": "2"},
    )
    server.start()
    try:
        yield server, private
    finally:
        server.stop()
        private.stop()


def test_tabs_recover_and_catch_up_after_redis_restarts(new_context, server_with_private_redis):
    server, private = server_with_private_redis
    alice, bob = create_account(server.url, "Alice Redis"), create_account(server.url, "Bob Redis")
    conversation_id = start_conversation(server.url, alice, bob)
    pages = []
    for _ in range(2):  # two tabs, likely one per worker
        page = page_signed_in_as(new_context, server.url, bob, base_url=server.url)
        page.goto(f"/messages/{conversation_id}")
        wait_until_interactive(page, "#composer")
        pages.append(page)
    reloads = []
    for page in pages:
        page.on("load", lambda: reloads.append(1))
    send_reliably(server, alice.token, conversation_id, "before", "redis-1")
    for page in pages:
        expect(page.locator("#message-list .message-body")).to_have_text(["before"])

    private.stop()
    time.sleep(1)
    private.start()
    send_reliably(server, alice.token, conversation_id, "right after", "redis-2")
    time.sleep(2)
    send_reliably(server, alice.token, conversation_id, "later", "redis-3")
    for page in pages:
        expect(page.locator("#message-list .message-body")).to_have_text(
            ["before", "right after", "later"], timeout=20_000
        )
    assert reloads == []  # recovered in place, no page reload
