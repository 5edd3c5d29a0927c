"""Replaying a signed-in tab's client token: the socket guard serves nothing of its owner's state.

Alice's tab token is a bearer credential for her tab's server-side state (her
conversation list and open thread). Mallory (signed in) and a signed-out
visitor each open the app with it planted in sessionStorage before any page
script runs; every websocket frame they receive is recorded and searched.
Run against one worker and against two workers with Redis between them.
"""

from __future__ import annotations

import re

import pytest
import redis
from playwright.sync_api import expect

from tests.browser.chat import page_signed_in_as, send_as, start_conversation
from tests.browser.ui import wait_until_interactive
from tests.conftest import create_account
from tests.support.databases import redis_contents

SECRET = "meet me at the old mill at nine"

# Plants the token once: the guard answers by making the page start afresh,
# and that reload must then be free to pick a token of its own.
PLANT_TOKEN = """
if (!sessionStorage.getItem("__planted")) {
  sessionStorage.setItem("__planted", "1");
  sessionStorage.setItem("token", %r);
}
"""


def _record_frames(page) -> list[str]:
    frames: list[str] = []

    def on_socket(socket) -> None:
        socket.on("framereceived", lambda payload: frames.append(str(payload)))

    page.on("websocket", on_socket)
    return frames


def _replay(
    new_context, server, victim_token: str, conversation_id: int, account=None
) -> tuple[list[str], object]:
    context = new_context(base_url=server.url)
    if account is not None:
        context.add_cookies(
            [{"name": "chat_app.session_token", "value": account.token, "url": server.url}]
        )
    context.add_init_script(PLANT_TOKEN % victim_token)
    page = context.new_page()
    frames = _record_frames(page)
    page.goto(f"/messages/{conversation_id}")
    page.wait_for_timeout(2500)
    page.goto("/messages")
    page.wait_for_timeout(1500)
    return frames, page


@pytest.mark.parametrize("server_name", ["app_server", "redis_app_server"])
def test_a_replayed_token_reveals_nothing(server_name, request, new_context):
    server = request.getfixturevalue(server_name)
    alice = create_account(server.url, "Alice Victim")
    bob = create_account(server.url, "Bob Friend")
    mallory = create_account(server.url, "Mallory Thief")
    conversation_id = start_conversation(server.url, alice, bob)
    send_as(server.url, bob.token, conversation_id, SECRET)

    alice_page = page_signed_in_as(new_context, server.url, alice, base_url=server.url)
    alice_page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(alice_page, "#composer")
    expect(alice_page.locator(".message-body")).to_have_text([SECRET])
    alice_token = alice_page.evaluate("sessionStorage.getItem('token')")
    assert re.fullmatch(r"[0-9a-f-]{36}", alice_token)
    alice_page.close()  # her socket goes; her state stays on the server

    for visitor in (mallory, None):
        frames, page = _replay(new_context, server, alice_token, conversation_id, visitor)
        received = "\n".join(frames)
        assert frames, "the visitor's socket was answered at all"
        for leaked in (SECRET, "Bob Friend", alice.email, bob.email, "Alice Victim"):
            assert leaked not in received, f"{leaked!r} reached a replayed token's socket"
        assert page.evaluate("sessionStorage.getItem('token')") != alice_token  # it started afresh
        if visitor is mallory:
            expect(page.locator("#nav-user-name")).to_have_text("Mallory Thief")
        else:
            page.wait_for_url(re.compile(r"/sign-in"))

    # Alice herself, back in a new tab, still sees her conversation.
    alice_again = page_signed_in_as(new_context, server.url, alice, base_url=server.url)
    alice_again.goto(f"/messages/{conversation_id}")
    expect(alice_again.locator(".message-body")).to_have_text([SECRET])

    if server.redis_url:
        _assert_no_session_token_in_redis(server.redis_url, [alice, bob, mallory])


def test_a_token_stays_bound_to_its_person_on_every_worker(new_context, redis_app_server):
    """A worker holding no state for a replayed token still knows whose it is.

    After a restart no worker holds any tab's state, so only the shared record
    of each tab's person can refuse the replay.
    """
    server = redis_app_server
    alice = create_account(server.url, "Alice Bound")
    bob = create_account(server.url, "Bob Bound")
    mallory = create_account(server.url, "Mallory Bound")
    conversation_id = start_conversation(server.url, alice, bob)
    alice_page = page_signed_in_as(new_context, server.url, alice, base_url=server.url)
    alice_page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(alice_page, "#composer")
    alice_token = alice_page.evaluate("sessionStorage.getItem('token')")
    alice_page.close()
    server.restart()

    frames, page = _replay(new_context, server, alice_token, conversation_id, mallory)
    assert frames, "the visitor's socket was answered at all"
    assert page.evaluate("sessionStorage.getItem('token')") != alice_token  # refused
    expect(page.locator("#nav-user-name")).to_have_text("Mallory Bound")


def _assert_no_session_token_in_redis(url: str, accounts) -> None:
    client = redis.Redis.from_url(url)
    try:
        contents = redis_contents(client)
    finally:
        client.close()
    assert contents, "Redis holds the tabs' records"
    tokens = [account.token.encode() for account in accounts]
    for key, values in contents.items():
        for value in [key, *values]:
            for token in tokens:
                assert token not in value, f"a raw session token is stored in Redis under {key!r}"
