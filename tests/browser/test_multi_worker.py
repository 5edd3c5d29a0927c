"""The product's demo on PostgreSQL + Redis with two back-end workers, the two people on different workers."""

from __future__ import annotations

import pickle
import re

import redis
from playwright.sync_api import expect
from reflex.utils.token_manager import RedisTokenManager

from tests.browser.chat import page_signed_in_as
from tests.browser.ui import screenshot, wait_until_interactive
from tests.conftest import create_account

THREAD_URL = re.compile(r"/messages/(\d+)/?$")


def _worker_of(server, page) -> str:
    """The id of the worker process holding this page's socket (from Reflex's own records)."""
    token = page.evaluate("sessionStorage.getItem('token')")
    client = redis.Redis.from_url(server.redis_url)
    try:
        raw = client.get(f"{RedisTokenManager._token_socket_record_prefix}{token}")
    finally:
        client.close()
    assert raw, "the page's socket is recorded in Redis"
    return pickle.loads(raw).instance_id


def _open_messages(new_context, server, account):
    page = page_signed_in_as(new_context, server.url, account, base_url=server.url)
    page.goto("/messages")
    wait_until_interactive(page, "#new-conversation")
    return page


def test_demo_across_two_workers(new_context, redis_app_server):
    server = redis_app_server
    one = create_account(server.url, "Worker One")
    two = create_account(server.url, "Worker Two")
    page_one = _open_messages(new_context, server, one)
    page_two = _open_messages(new_context, server, two)
    for _ in range(12):  # the server picks the worker; open again until they differ
        if _worker_of(server, page_one) != _worker_of(server, page_two):
            break
        page_two.context.close()
        page_two = _open_messages(new_context, server, two)
    assert _worker_of(server, page_one) != _worker_of(server, page_two)

    page_one.locator("#new-conversation").click()
    page_one.locator("#new-conversation-emails").fill(two.email)
    page_one.locator("#start-conversation").click()
    page_one.wait_for_url(THREAD_URL)
    conversation_id = int(THREAD_URL.search(page_one.url).group(1))
    expect(page_two.locator(".conversation-title")).to_have_text("Worker One")  # across workers

    page_two.locator(".conversation-row").click()
    page_two.wait_for_url(THREAD_URL)
    wait_until_interactive(page_one, "#composer")
    wait_until_interactive(page_two, "#composer")
    sent = []
    for index in range(4):
        for page, name in ((page_one, "one"), (page_two, "two")):
            text = f"{name} says {index}"
            page.locator("#composer").fill(text)
            page.locator("#composer").press("Enter")
            sent.append(text)
    for page in (page_one, page_two):
        expect(page.locator("#message-list .message-body")).to_have_count(len(sent))
    shown_one = page_one.locator("#message-list .message-body").all_inner_texts()
    assert sorted(shown_one) == sorted(sent)
    expect(page_two.locator("#message-list .message-body")).to_have_text(shown_one)  # same order

    page_two.reload()
    expect(page_two.locator("#message-list .message-body")).to_have_text(shown_one)
    screenshot(page_two, "multi-worker-thread")
    page_one.goto(f"/messages/{conversation_id}")
    expect(page_one.locator("#message-list .message-body")).to_have_text(shown_one)
