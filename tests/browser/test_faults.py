"""Faults on the multi-worker set-up: a worker killed mid-burst, the whole server restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
from playwright.sync_api import expect

from tests.browser.chat import page_signed_in_as, send_reliably, start_conversation
from tests.browser.ui import wait_until_interactive
from tests.conftest import create_account


def _workers(server) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def _stored(server, token: str, conversation_id: int) -> list[str]:
    response = httpx.get(
        f"{server.url}/api/conversations/{conversation_id}/messages?limit=200",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    return [message["content"] for message in response.json()["messages"]]


def _open_thread(new_context, server, account, conversation_id):
    page = page_signed_in_as(new_context, server.url, account, base_url=server.url)
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")
    return page


def test_killing_a_worker_mid_burst_loses_and_doubles_nothing(new_context, redis_app_server):
    server = redis_app_server
    alice, bob = create_account(server.url, "Alice Burst"), create_account(server.url, "Bob Burst")
    conversation_id = start_conversation(server.url, alice, bob)
    pages = [_open_thread(new_context, server, bob, conversation_id) for _ in range(2)]
    pages.append(_open_thread(new_context, server, alice, conversation_id))
    workers_before = _workers(server)
    assert len(workers_before) == 2

    def burst() -> None:
        for index in range(30):
            send_reliably(
                server, alice.token, conversation_id, f"burst {index:02d}", f"burst-{index}"
            )
            time.sleep(0.05)

    sender = threading.Thread(target=burst)
    sender.start()
    time.sleep(0.6)
    os.kill(workers_before[0], signal.SIGKILL)
    sender.join(timeout=120)
    assert not sender.is_alive()

    stored = _stored(server, alice.token, conversation_id)
    assert stored == [f"burst {index:02d}" for index in range(30)]  # each once, in order
    for page in pages:  # every tab, wherever its socket was, ends equal to the database
        expect(page.locator("#message-list .message-body")).to_have_text(stored, timeout=30_000)
    assert len(_workers(server)) == 2  # the killed worker was started again


def test_restarting_the_whole_multi_worker_server_catches_tabs_up(new_context, redis_app_server):
    server = redis_app_server
    alice, bob = create_account(server.url, "Alice Again"), create_account(server.url, "Bob Again")
    conversation_id = start_conversation(server.url, alice, bob)
    page = _open_thread(new_context, server, bob, conversation_id)
    send_reliably(server, alice.token, conversation_id, "before", "restart-1")
    expect(page.locator("#message-list .message-body")).to_have_text(["before"])
    server.restart()
    send_reliably(server, alice.token, conversation_id, "during the comeback", "restart-2")
    expect(page.locator("#message-list .message-body")).to_have_text(
        ["before", "during the comeback"], timeout=30_000
    )
    send_reliably(server, alice.token, conversation_id, "after", "restart-3")
    expect(page.locator("#message-list .message-body")).to_have_text(
        ["before", "during the comeback", "after"], timeout=30_000
    )
