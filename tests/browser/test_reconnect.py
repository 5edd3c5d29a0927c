"""After the websocket drops, or the whole server restarts, the open thread and list catch up."""

from __future__ import annotations

import re

from playwright.sync_api import WebSocketRoute, expect

from tests.browser.chat import page_signed_in_as, send_as, start_conversation
from tests.browser.ui import wait_until_interactive

EVENT_SOCKET = re.compile(r".*/_event.*")


def test_thread_catches_up_after_the_socket_drops(new_context, app_server, make_account):
    alice, bob = make_account("Alice Drop"), make_account("Bob Drop")
    conversation_id = start_conversation(app_server.url, alice, bob)
    page = page_signed_in_as(new_context, app_server.url, bob)

    sockets: list[WebSocketRoute] = []
    cut_off = {"now": False}

    def route(socket: WebSocketRoute) -> None:
        if cut_off["now"]:
            socket.close()  # the network is down: the page keeps retrying
            return
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket(EVENT_SOCKET, route)
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")
    send_as(app_server.url, alice.token, conversation_id, "before the drop")
    expect(page.locator(".message-body")).to_have_text(["before the drop"])

    cut_off["now"] = True
    sockets[-1].close()
    connected_before = len(sockets)
    for index in range(3):
        send_as(app_server.url, alice.token, conversation_id, f"while away {index}")
    page.wait_for_timeout(1000)
    expect(page.locator(".message-body")).to_have_text(["before the drop"])  # really cut off

    cut_off["now"] = False
    expected = ["before the drop", "while away 0", "while away 1", "while away 2"]
    expect(page.locator(".message-body")).to_have_text(expected, timeout=20_000)
    assert len(sockets) > connected_before  # it came back on a new socket
    # The list caught up too, and a message after the reconnect arrives live, once.
    expect(page.locator(".conversation-preview")).to_have_text("while away 2")
    send_as(app_server.url, alice.token, conversation_id, "after")
    expect(page.locator(".message-body")).to_have_text([*expected, "after"])


def test_thread_catches_up_after_a_server_restart(new_context, app_server, make_account):
    alice, bob = make_account("Alice Restart"), make_account("Bob Restart")
    conversation_id = start_conversation(app_server.url, alice, bob)
    page = page_signed_in_as(new_context, app_server.url, bob)
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")
    send_as(app_server.url, alice.token, conversation_id, "one")
    expect(page.locator(".message-body")).to_have_text(["one"])

    app_server.restart()  # in-memory state and the tab registry are gone
    send_as(app_server.url, alice.token, conversation_id, "two")  # possibly before the page is back
    expect(page.locator(".message-body")).to_have_text(["one", "two"], timeout=30_000)
    send_as(app_server.url, alice.token, conversation_id, "three")
    expect(page.locator(".message-body")).to_have_text(["one", "two", "three"], timeout=30_000)
