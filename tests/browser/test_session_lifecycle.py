"""A tab's token changes with its person; expiry reaches open tabs; Redis never holds what a tab shows."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import redis
from playwright.sync_api import expect
from sqlmodel import Session, update

from chat_app.clock import utcnow
from chat_app.models import AuthSession
from tests.browser.chat import page_signed_in_as, send_as, start_conversation
from tests.browser.ui import MESSAGES_URL, SIGN_IN_URL, sign_in, wait_until_interactive
from tests.conftest import create_account
from tests.support.databases import redis_contents


def _tab_token(page) -> str:
    """The tab's Reflex client token, once the page has made it (it does so as its socket opens)."""
    page.wait_for_function("sessionStorage.getItem('token') !== null")
    return page.evaluate("sessionStorage.getItem('token')")


def test_signing_in_and_out_gives_the_tab_a_fresh_token(new_context, make_account):
    account = make_account("Token Turner")
    page = new_context().new_page()
    page.goto("/sign-in")
    wait_until_interactive(page)
    before = _tab_token(page)
    sign_in(page, email=account.email, password=account.password, path=None)
    page.wait_for_url(MESSAGES_URL)
    wait_until_interactive(page, "#sign-out")
    signed_in = _tab_token(page)
    page.locator("#sign-out").click()
    page.wait_for_url(SIGN_IN_URL)
    wait_until_interactive(page)
    after = _tab_token(page)
    assert before and signed_in and after
    assert len({before, signed_in, after}) == 3


def test_an_expiring_session_signs_its_open_tab_out(new_context, app_server, app_db, make_account):
    account = make_account("Soon Expired")
    page = page_signed_in_as(new_context, app_server.url, account)
    page.goto("/messages")
    expect(page.locator("#signed-in-name")).to_have_text("Soon Expired")
    # The page's last load event (the list) is done: any later event would use the
    # session, and a session in use slides its expiry a week on, as it should.
    expect(page.locator("#conversations-empty")).to_be_visible()
    # Seven idle days later, in a few seconds: the session runs out while the tab sits open.
    expires_at = utcnow() + timedelta(seconds=3)
    with Session(app_db) as session:
        session.exec(
            update(AuthSession)
            .where(AuthSession.user_id == account.id)
            .values(expires_at=expires_at)
        )
        session.commit()
    page.wait_for_url(re.compile(r"/sign-in"), timeout=15_000)  # no click, no reload by the test
    late = time.time() - expires_at.timestamp()
    print(f"\nsigned out {late:.2f} s after the session expired")
    assert late < 2.5


def _redis_values(client: redis.Redis) -> list[bytes]:
    """Every key and every value Redis holds, in one list."""
    return [part for key, values in redis_contents(client).items() for part in (key, *values)]


def test_no_message_text_or_session_token_reaches_redis(new_context, redis_app_server):
    """Tab state stays in the worker's memory: Redis only records sockets and tabs."""
    server = redis_app_server
    alice, bob = create_account(server.url, "Alice Leaving"), create_account(server.url, "Bob Away")
    conversation_id = start_conversation(server.url, alice, bob)
    private = "a sentence only alice's tab has seen"
    send_as(server.url, alice.token, conversation_id, private)
    page = page_signed_in_as(new_context, server.url, alice, base_url=server.url)
    page.goto(f"/messages/{conversation_id}")
    expect(page.locator(".message-body")).to_have_text([private])
    token = _tab_token(page)
    send_as(server.url, bob.token, conversation_id, "a reply pushed into alice's tab")
    expect(page.locator(".message-body")).to_have_count(2)

    client = redis.Redis.from_url(server.redis_url)
    try:
        held = _redis_values(client)
        assert any(token.encode() in value for value in held)  # the tab is recorded...
        for secret in (private, "a reply pushed", alice.token):  # ...and nothing of it
            assert not any(secret.encode() in value for value in held), secret
        wait_until_interactive(page, "#sign-out")
        page.locator("#sign-out").click()
        page.wait_for_url(re.compile(r"/sign-in"))
        page.wait_for_timeout(500)
        held = _redis_values(client)
        for secret in (private, alice.token):
            assert not any(secret.encode() in value for value in held), secret
    finally:
        client.close()
