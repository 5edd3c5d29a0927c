"""The product's demo in real Chromium: two people (and a second tab) messaging in real time."""

from __future__ import annotations

import re
import statistics
import time
import uuid

import httpx
from playwright.sync_api import Page, expect
from sqlmodel import Session, func, select

from chat_app.models import ConversationMember, Message
from chat_app.states.inbox import TIERS
from tests.browser.chat import page_signed_in_as, send_as, start_conversation
from tests.browser.ui import (
    MESSAGES_URL,
    screenshot,
    sign_in_to_messages,
    sign_up,
    wait_until_interactive,
)
from tests.conftest import unique_email

PASSWORD = "password123"
THREAD_URL = re.compile(r"/messages/\d+/?$")


def _signed_up(context, name: str, email: str) -> Page:
    page = context.new_page()
    sign_up(page, name=name, email=email, password=PASSWORD)
    page.wait_for_url(MESSAGES_URL)
    expect(page.locator("#signed-in-name")).to_have_text(name)
    return page


def _start_conversation(page: Page, email: str) -> int:
    wait_until_interactive(page, "#new-conversation")
    page.locator("#new-conversation").click()
    page.locator("#new-conversation-emails").fill(email)
    page.locator("#start-conversation").click()
    page.wait_for_url(THREAD_URL)
    return int(re.search(r"/messages/(\d+)", page.url).group(1))


def _send(page: Page, text: str) -> None:
    composer = page.locator("#composer")
    composer.fill(text)
    composer.press("Enter")


def _bodies(page: Page) -> list[str]:
    return page.locator("#message-list .message-body").all_inner_texts()


def _open_thread(page: Page, conversation_id: int) -> None:
    page.goto(f"/messages/{conversation_id}")
    wait_until_interactive(page, "#composer")


def test_two_people_and_a_second_tab_message_in_real_time(new_context, app_server, app_db):
    one_email, two_email = unique_email("user1"), unique_email("user2")
    alice_context, bob_context = new_context(), new_context()
    alice = _signed_up(alice_context, "User One", one_email)
    bob = _signed_up(bob_context, "User Two", two_email)
    expect(bob.locator("#conversations-empty")).to_be_visible()
    screenshot(bob, "messages-empty")

    dialogs: list[str] = []
    for page in (alice, bob):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    conversation_id = _start_conversation(alice, two_email)
    # Bob's list shows the new conversation without a reload.
    expect(bob.locator(".conversation-row")).to_have_count(1)
    expect(bob.locator(".conversation-title")).to_have_text("User One")

    alice_second_tab = alice_context.new_page()
    _open_thread(alice_second_tab, conversation_id)

    _send(alice, "Hi Two!")
    # The sender's lists show it too: the tab that sent it, and her other tab.
    expect(alice.locator(".conversation-preview")).to_have_text("You: Hi Two!")
    expect(alice_second_tab.locator(".conversation-preview")).to_have_text("You: Hi Two!")
    # Bob is on the list: the preview and unread badge update live.
    expect(bob.locator(".conversation-preview")).to_have_text("Hi Two!")
    expect(bob.locator(".unread-badge")).to_have_text("1")
    bob.locator(".conversation-row").click()
    bob.wait_for_url(THREAD_URL)
    wait_until_interactive(bob, "#composer")
    expect(bob.locator(".message-body")).to_have_text(["Hi Two!"])
    expect(bob.locator(".unread-badge")).to_have_count(0)  # opening it marked it read

    # Typing shows on the other side, and goes when the message is sent.
    bob.locator("#composer").press_sequentially("Hello One", delay=30)
    expect(alice.locator("#typing-indicator")).to_have_text("User Two is typing…")
    bob.locator("#composer").press("Enter")
    expect(alice.locator("#typing-indicator")).not_to_have_text(re.compile("typing"))

    for index in range(3):
        _send(alice, f"alice {index}")
        _send(bob, f"bob {index}")
    # An XSS attempt is shown as text and runs nothing.
    _send(alice, "<img src=x onerror=alert(1)> <b>bold?</b>")

    expected = (
        ["Hi Two!", "Hello One"]
        + [text for index in range(3) for text in (f"alice {index}", f"bob {index}")]
        + ["<img src=x onerror=alert(1)> <b>bold?</b>"]
    )
    with Session(app_db) as session:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stored = session.exec(
                select(Message.body)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            ).all()
            if len(stored) == len(expected):
                break
            time.sleep(0.2)
            session.expire_all()
    assert sorted(stored) == sorted(expected)  # each stored exactly once
    # Every tab shows the database's order, each message once: no loss, no duplicates.
    for page in (alice, bob, alice_second_tab):
        expect(page.locator("#message-list .message-body")).to_have_text(list(stored))
    # Each side shows its own messages as its own (on the right), the other's as theirs.
    bob_wrote = {"Hello One", "bob 0", "bob 1", "bob 2"}
    alice_sent = [text for text in stored if text not in bob_wrote]
    bob_sent = [text for text in stored if text in bob_wrote]
    for page, own, others in (
        (alice, alice_sent, bob_sent),
        (alice_second_tab, alice_sent, bob_sent),
        (bob, bob_sent, alice_sent),
    ):
        expect(page.locator(".message-mine .message-body")).to_have_text(own)
        expect(page.locator(".message-theirs .message-body")).to_have_text(others)
    assert bob.locator("#message-list img").count() == 0
    assert dialogs == []

    # A message sent through the HTTP API reaches the open pages like one typed in the UI.
    token = httpx.post(
        f"{app_server.url}/api/auth/sign-in/email",
        json={"email": two_email, "password": PASSWORD},
        timeout=20,
    ).json()["token"]
    httpx.post(
        f"{app_server.url}/api/conversations/{conversation_id}/messages",
        json={"content": "sent by a bot", "client_message_id": uuid.uuid4().hex},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ).raise_for_status()
    for page in (alice, bob, alice_second_tab):
        expect(page.locator("#message-list .message-body").last).to_have_text("sent by a bot")
    screenshot(alice, "thread-wide")
    alice.set_viewport_size({"width": 390, "height": 800})
    screenshot(alice, "thread-narrow")
    alice.set_viewport_size({"width": 1280, "height": 720})

    # Refresh, and sign out and back in: everything is still there.
    full_thread = list(stored) + ["sent by a bot"]
    alice.reload()
    expect(alice.locator("#message-list .message-body")).to_have_text(full_thread)
    alice.locator("#sign-out").click()
    alice.wait_for_url(re.compile(r"/sign-in"))
    sign_in_to_messages(alice, email=one_email, password=PASSWORD, name="User One")
    expect(alice.locator(".conversation-preview")).to_have_text("sent by a bot")
    _open_thread(alice, conversation_id)
    expect(alice.locator("#message-list .message-body")).to_have_text(full_thread)


def test_enter_to_visible_latency(new_context):
    """Measures (prints) Enter on one side to the text on the other: median of 20."""
    sender = _signed_up(new_context(), "Latency One", unique_email("lat1"))
    receiver_email = unique_email("lat2")
    receiver = _signed_up(new_context(), "Latency Two", receiver_email)
    conversation_id = _start_conversation(sender, receiver_email)
    _open_thread(receiver, conversation_id)
    receiver.evaluate(
        """() => {
            window.__seen = {};
            new MutationObserver(() => {
                for (const node of document.querySelectorAll('#message-list .message-body')) {
                    if (!(node.innerText in window.__seen)) window.__seen[node.innerText] = performance.timeOrigin + performance.now();
                }
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    latencies = []
    for index in range(20):
        text = f"ping {index} {uuid.uuid4().hex[:6]}"
        sender.locator("#composer").fill(text)
        sent_at = sender.evaluate("performance.timeOrigin + performance.now()")
        sender.locator("#composer").press("Enter")
        receiver.wait_for_function("text => text in window.__seen", arg=text)
        latencies.append(receiver.evaluate("text => window.__seen[text]", text) - sent_at)
    latencies.sort()
    print(
        f"\nEnter -> visible on the other side, 20 messages: median {statistics.median(latencies):.0f} ms, "
        f"p90 {latencies[17]:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    expect(receiver.locator("#message-list .message-body")).to_have_count(20)


def test_bad_input_is_refused_and_kept(new_context, make_account):
    other = make_account("Someone Else")
    page = _signed_up(new_context(), "Careful Writer", unique_email("careful"))
    wait_until_interactive(page, "#new-conversation")
    page.locator("#new-conversation").click()
    page.locator("#new-conversation-emails").fill("nobody-" + uuid.uuid4().hex[:6] + "@test.com")
    page.locator("#start-conversation").click()
    expect(page.locator("#new-conversation-error")).to_contain_text("No user with that email")
    page.locator("#new-conversation-emails").fill("not an email")
    page.locator("#start-conversation").click()
    expect(page.locator("#new-conversation-error")).to_have_text("Enter a valid email address")
    page.locator("#new-conversation-emails").fill(other.email)
    page.locator("#start-conversation").click()
    page.wait_for_url(THREAD_URL)
    wait_until_interactive(page, "#composer")

    too_long = "x" * 10_001
    page.locator("#composer").fill(too_long)
    page.locator("#composer").press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("at most 10,000 characters")
    expect(page.locator("#composer")).to_have_value(too_long)  # nothing lost
    page.locator("#composer").fill("   ")
    page.locator("#composer").press("Enter")
    page.locator("#composer").fill("fine")
    page.locator("#composer").press("Enter")
    expect(page.locator("#message-list .message-body")).to_have_text(
        ["fine"]
    )  # the blank one was not sent
    expect(page.locator("#composer")).to_have_value("")

    # Shift+Enter makes a new line instead of sending.
    page.locator("#composer").press_sequentially("line one")
    page.locator("#composer").press("Shift+Enter")
    page.locator("#composer").press_sequentially("line two")
    expect(page.locator("#message-list .message-body")).to_have_count(1)
    page.locator("#composer").press("Enter")
    expect(page.locator("#message-list .message-body").last).to_have_text("line one\nline two")


def test_someone_elses_conversation_is_not_found(new_context, make_account, app_server):
    alice, bob = make_account("Alice Private"), make_account("Bob Private")
    created = httpx.post(
        f"{app_server.url}/api/conversations",
        json={"emails": [bob.email]},
        headers={"Authorization": f"Bearer {alice.token}"},
        timeout=20,
    ).json()
    httpx.post(
        f"{app_server.url}/api/conversations/{created['id']}/messages",
        json={"content": "just between us", "client_message_id": uuid.uuid4().hex},
        headers={"Authorization": f"Bearer {alice.token}"},
        timeout=20,
    ).raise_for_status()

    page = _signed_up(new_context(), "Nosy Visitor", unique_email("nosy"))
    for conversation_id in (created["id"], 999_999):
        page.goto(f"/messages/{conversation_id}")
        expect(page.locator("#conversation-not-found")).to_have_text("Conversation not found")
    assert "just between us" not in page.content()
    assert "Alice Private" not in page.content()


def test_reading_in_one_tab_clears_the_badge_in_the_others(
    new_context, make_account, app_server, app_db
):
    alice, bob = make_account("Alice Reader"), make_account("Bob Reader")
    conversation_id = start_conversation(app_server.url, alice, bob)
    bob_context = new_context()
    on_list = bob_context.new_page()
    sign_in_to_messages(on_list, email=bob.email, password=bob.password, name=bob.name)
    in_thread = bob_context.new_page()
    _open_thread(in_thread, conversation_id)
    # The tab showing the thread must never show a badge for it, not even for a moment.
    in_thread.evaluate(
        """() => {
            window.badgeSeen = false;
            new MutationObserver(() => {
                if (document.querySelector('.unread-badge')) window.badgeSeen = true;
            }).observe(document.body, {childList: true, subtree: true});
        }"""
    )

    for text in ("first", "second"):
        send_as(app_server.url, alice.token, conversation_id, text)
        expect(in_thread.locator("#message-list .message-body").last).to_have_text(text)
        # The list-only tab saw the message arrive, then learnt it was read elsewhere.
        expect(on_list.locator(".conversation-preview")).to_have_text(text)
        expect(on_list.locator(".unread-badge")).to_have_count(0)

    assert in_thread.evaluate("window.badgeSeen") is False
    with Session(app_db) as session:
        newest = session.exec(
            select(func.max(Message.id)).where(Message.conversation_id == conversation_id)
        ).one()
        member = session.get(ConversationMember, (conversation_id, bob.id))
        assert member.last_read_message_id == newest  # stored, not only shown
    on_list.reload()
    wait_until_interactive(on_list, "#new-conversation")
    expect(on_list.locator(".conversation-row")).to_have_count(1)
    expect(on_list.locator(".unread-badge")).to_have_count(0)


def test_search_filters_the_list_by_name_or_email(new_context, make_account, app_server):
    me = make_account("Searching Sam")
    ada, bob = make_account("Ada Lovelace"), make_account("Bob Builder")
    for other in (ada, bob):
        start_conversation(app_server.url, me, other)
    page = new_context().new_page()
    sign_in_to_messages(page, email=me.email, password=me.password, name=me.name)
    wait_until_interactive(page, "#conversation-search")
    titles = page.locator("#conversation-list .conversation-title")
    expect(titles).to_have_count(2)

    page.locator("#conversation-search").fill("  LOVE")
    expect(titles).to_have_text(["Ada Lovelace"])
    screenshot(page, "messages-search")
    page.locator("#conversation-search").fill(bob.email.split("@")[0])
    expect(titles).to_have_text(["Bob Builder"])
    page.locator("#conversation-search").fill("nobody-by-that-name")
    expect(titles).to_have_count(0)
    expect(page.get_by_text("No conversation matches")).to_be_visible()
    page.locator("#conversation-search").fill("")
    expect(titles).to_have_count(2)


def test_a_group_title_in_the_list_is_drawn_whole(new_context, make_account, app_server):
    me = make_account("Peggy Joy")
    gary, yuri = make_account("Gary Quigley"), make_account("Yuri Pyke")
    conversation_id = start_conversation(app_server.url, me, gary, yuri)
    send_as(app_server.url, gary.token, conversation_id, "hello")
    page = new_context().new_page()
    sign_in_to_messages(page, email=me.email, password=me.password, name=me.name)
    title = page.locator("#conversation-list .conversation-title")
    expect(title).to_have_text("Gary Quigley, Yuri Pyke")
    # Nothing cut off below the line: no comma drawn as a period, no g, y or Q
    # without its tail.
    assert title.evaluate("element => element.scrollHeight <= element.clientHeight")


def test_a_long_title_gives_way_to_the_time_in_the_list(new_context, make_account, app_server):
    me = make_account("Lee")
    others = [make_account(f"Someone With A Long Name {n}") for n in range(3)]
    conversation_id = start_conversation(app_server.url, me, *others)
    send_as(app_server.url, others[0].token, conversation_id, "hello")
    page = new_context().new_page()
    sign_in_to_messages(page, email=me.email, password=me.password, name=me.name)
    title = page.locator("#conversation-list .conversation-title")
    time_shown = page.locator("#conversation-list .conversation-time")
    expect(time_shown).to_be_visible()
    assert title.evaluate("element => element.scrollWidth > element.clientWidth")  # cut short
    title_box, time_box = title.bounding_box(), time_shown.bounding_box()
    assert time_box["height"] <= title_box["height"]  # the time on one line beside it
    screenshot(page, "messages-long-title")


def test_the_composer_grows_with_a_draft_then_scrolls(new_context, make_account, app_server):
    me, other = make_account("Maya"), make_account("Noor")
    conversation_id = start_conversation(app_server.url, me, other)
    page = new_context().new_page()
    sign_in_to_messages(page, email=me.email, password=me.password, name=me.name)
    _open_thread(page, conversation_id)
    composer = page.locator("#composer")
    height = "element => [element.clientHeight, element.scrollHeight]"
    empty, _ = composer.evaluate(height)

    composer.fill("one\ntwo\nthree\nfour")
    grown, needed = composer.evaluate(height)
    assert grown > empty and needed <= grown  # every line shows, none scrolled away
    screenshot(page, "composer-four-lines")

    composer.fill("\n".join(f"line {n}" for n in range(30)))
    capped, needed = composer.evaluate(height)
    assert grown < capped < needed  # a long draft stops growing and scrolls
    assert capped <= page.locator("#message-scroller").evaluate("element => element.clientHeight")

    composer.press("Enter")
    expect(page.locator("#message-list .message-body")).to_have_count(1)
    assert composer.evaluate(height)[0] == empty  # sent: back to its size


def test_their_consecutive_messages_show_the_name_once(new_context, make_account, app_server):
    me, bob, cy = make_account("Ada"), make_account("Bob Stone"), make_account("Cy Vale")
    conversation_id = start_conversation(app_server.url, me, bob, cy)
    # Thirteen messages: the page shows them as a block of ten and the latest
    # three, so Bob's run crosses from one part to the next.
    for n in range(11):
        send_as(app_server.url, bob.token, conversation_id, f"bob {n}")
    send_as(app_server.url, cy.token, conversation_id, "cy here")
    send_as(app_server.url, bob.token, conversation_id, "bob again")
    page = new_context().new_page()
    sign_in_to_messages(page, email=me.email, password=me.password, name=me.name)
    _open_thread(page, conversation_id)
    expect(page.locator("#message-list .message-body")).to_have_count(13)
    names = page.locator("#message-list .message-sender")
    expect(names).to_have_count(13)
    shown = [name.inner_text() for name in names.all() if name.is_visible()]
    assert shown == ["Bob Stone", "Cy Vale", "Bob Stone"]
    screenshot(page, "thread-one-name-per-run")


def test_a_long_list_moves_a_conversation_up_and_resends_only_the_rows_down_to_it(
    new_context, make_account, app_server
):
    me = make_account("Lena Long")
    friends = [make_account(f"Friend {number:02d}") for number in range(30)]
    started = [start_conversation(app_server.url, me, friend) for friend in friends]
    page = page_signed_in_as(new_context, app_server.url, me)
    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))),
    )
    page.goto("/messages")
    rows = page.locator("#conversation-list .conversation-row")
    expect(rows).to_have_count(30)
    # It came a tier per frame, the newest rows first.
    tiers_per_frame = [
        [tier for tier in TIERS if f'"{tier}_rx_state_"' in frame]
        for frame in frames
        if "_rx_state_" in frame
    ]
    assert [tiers for tiers in tiers_per_frame if tiers] == [["rows_0"], ["rows_1"], ["rows_2"]]

    def listed() -> list[int]:
        return [
            int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.conversationId)")
        ]

    assert listed() == started[::-1]  # the last started on top

    # The 4th row moves to the top as the same element (rows are keyed by conversation).
    fourth = started[-4]
    element = page.locator(f'.conversation-row[data-conversation-id="{fourth}"]').element_handle()
    send_as(app_server.url, friends[-4].token, fourth, "up from the fourth row")
    expect(rows.first).to_contain_text("up from the fourth row")
    assert page.evaluate("([a, b]) => a === b", [element, rows.first.element_handle()])
    expect(rows.nth(1)).to_contain_text(friends[-1].name)

    # The 20th row (in the second tier, rows 9 to 24) moves to the top.
    twentieth = started[10]
    frames.clear()
    send_as(app_server.url, friends[10].token, twentieth, "up from the twentieth row")
    expect(rows.first).to_contain_text("up from the twentieth row")
    assert listed() == [
        twentieth,
        fourth,
        *[i for i in started[::-1] if i not in (twentieth, fourth)],
    ]
    frame = next(frame for frame in frames if "up from the twentieth row" in frame)
    assert '"rows_0_rx_state_"' in frame and '"rows_1_rx_state_"' in frame
    assert '"rows_2_rx_state_"' not in frame  # rows 25 to 30 stayed where they were

    # A message to the conversation on top re-sends the first tier alone.
    frames.clear()
    send_as(app_server.url, friends[10].token, twentieth, "and once more on top")
    expect(rows.first).to_contain_text("and once more on top")
    frame = next(frame for frame in frames if "and once more on top" in frame)
    assert '"rows_0_rx_state_"' in frame and '"rows_1_rx_state_"' not in frame
    expect(rows.first.locator(".unread-badge")).to_have_text("2")
    screenshot(page, "messages-long-list")
