"""A long thread: the newest 50 first, older pages on scrolling up, and a view that behaves."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect
from sqlmodel import Session, delete

from chat_app.clock import utcnow
from chat_app.models import ConversationMember
from tests.browser.chat import page_signed_in_as, send_as, start_conversation
from tests.browser.ui import screenshot, wait_until_interactive


def _bodies(page) -> list[str]:
    return page.locator("#message-list .message-body").all_inner_texts()


def _scroll_offset(page) -> float:
    """0 at the bottom of the thread; more negative the further up."""
    return page.evaluate("document.getElementById('message-scroller').scrollTop")


def test_older_pages_load_on_scrolling_up_and_new_messages_follow(
    new_context, app_server, make_account
):
    alice, bob = make_account("Alice Long"), make_account("Bob Long")
    conversation_id = start_conversation(app_server.url, alice, bob)
    with httpx.Client(headers={"Authorization": f"Bearer {alice.token}"}, timeout=20) as client:
        for index in range(120):
            client.post(
                f"{app_server.url}/api/conversations/{conversation_id}/messages",
                json={"content": f"message {index:03d}", "client_message_id": f"long-{index}"},
            ).raise_for_status()

    page = page_signed_in_as(new_context, app_server.url, bob)
    page.set_viewport_size({"width": 1200, "height": 700})
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")
    expect(page.locator("#message-list .message-body")).to_have_count(50)
    assert _bodies(page) == [f"message {index:03d}" for index in range(70, 120)]
    assert abs(_scroll_offset(page)) < 2  # opened at the newest message

    # Each scroll to the top pages in at least one older page (a reader held at the
    # very top may get the next one at once too), until the conversation's start.
    for _ in range(2):
        shown = page.locator("#message-list .message-body").count()
        if shown == 120:
            break
        page.evaluate(
            "const s = document.getElementById('message-scroller'); s.scrollTop = -s.scrollHeight"
        )
        page.wait_for_function(
            f"document.querySelectorAll('#message-list .message-body').length > {shown}"
        )
    expect(page.locator("#message-list .message-body")).to_have_count(120)
    assert _bodies(page) == [f"message {index:03d}" for index in range(120)]
    expect(page.locator("#load-older")).to_have_count(0)

    # Scrolled up, a new message does not move what the reader is looking at...
    page.evaluate("document.getElementById('message-scroller').scrollTop = -1500")
    anchor = page.locator("#message-list .message-body", has_text="message 090")
    top_before = anchor.bounding_box()["y"]
    send_as(app_server.url, alice.token, conversation_id, "new while scrolled up")
    expect(page.locator("#message-list .message-body").last).to_have_text("new while scrolled up")
    assert abs(anchor.bounding_box()["y"] - top_before) < 2
    # ...and at the bottom, the view follows new messages.
    page.evaluate("document.getElementById('message-scroller').scrollTop = 0")
    send_as(app_server.url, alice.token, conversation_id, "new at the bottom")
    expect(page.locator("#message-list .message-body").last).to_have_text("new at the bottom")
    expect(page.locator("#message-list .message-body").last).to_be_in_viewport()
    assert abs(_scroll_offset(page)) < 2

    # The thread travels in parts (blocks of ten, folded together once all are full):
    # dozens more still show every message once, in order.
    burst = [f"burst {index:02d}" for index in range(45)]
    for body in burst:
        send_as(app_server.url, alice.token, conversation_id, body)
    expect(page.locator("#message-list .message-body").last).to_have_text(burst[-1])
    assert _bodies(page) == [
        *(f"message {index:03d}" for index in range(120)),
        "new while scrolled up",
        "new at the bottom",
        *burst,
    ]
    page.evaluate("document.getElementById('message-scroller').scrollTop = -300")
    screenshot(page, "thread-long")


def test_a_failed_send_says_why_and_retry_sends_it_once(
    new_context, app_server, app_db, make_account
):
    alice, bob = make_account("Alice Retry"), make_account("Bob Retry")
    conversation_id = start_conversation(app_server.url, alice, bob)
    page = page_signed_in_as(new_context, app_server.url, alice)
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")

    # Alice loses her membership behind the page's back: the store is refused.
    with Session(app_db) as session:
        session.exec(
            delete(ConversationMember).where(
                ConversationMember.conversation_id == conversation_id,
                ConversationMember.user_id == alice.id,
            )
        )
        session.commit()
    page.locator("#composer").fill("will fail first")
    page.locator("#composer").press("Enter")
    expect(page.locator(".message-failed")).to_have_count(1)
    expect(
        page.get_by_text("Message not sent: Conversation not found")
    ).to_be_visible()  # the toast

    with Session(app_db) as session:
        session.add(
            ConversationMember(
                conversation_id=conversation_id, user_id=alice.id, joined_at=utcnow()
            )
        )
        session.commit()
    page.locator(".message-retry").click()
    expect(page.locator(".message-failed")).to_have_count(0)
    expect(page.locator("#message-list .message-body")).to_have_text(["will fail first"])
    page.locator(".message-body").first.wait_for()
    messages = httpx.get(
        f"{app_server.url}/api/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {bob.token}"},
        timeout=20,
    ).json()["messages"]
    assert [message["content"] for message in messages] == ["will fail first"]
    page.reload()
    expect(page.locator("#message-list .message-body")).to_have_text(["will fail first"])
