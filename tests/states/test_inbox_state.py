"""The conversation list's receiver when pushes cross: previews and counts never go back.

The receiver runs on a real state tree of the app (no server needed); only the
database re-read it falls back on is recorded instead of run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from reflex.state import State

import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
from chat_app.domain.conversations import MessageView
from chat_app.states.inbox import ConversationRow, InboxState
from chat_app.states.session import SessionState
from tests.support.reflex_client import run_async

ME, OTHER, CONVERSATION = 7, 8, 42


def message(message_id: int, sender_id: int = OTHER) -> MessageView:
    return MessageView(
        id=message_id,
        conversation_id=CONVERSATION,
        sender_id=sender_id,
        sender_name="Other",
        body=f"message {message_id}",
        client_message_id=f"c{message_id}",
        created_at=datetime(2030, 1, 1, 0, 0, message_id % 60, tzinfo=UTC),
    )


def sent(message_id: int, *, unread: int, read_position: int) -> dict:
    return {
        "conversation_id": CONVERSATION,
        "sender_id": OTHER,
        "message": message(message_id),
        "previous_message_id": message_id - 1,
        "unread_by_member": {ME: unread, OTHER: 0},
        "read_position_by_member": {ME: read_position, OTHER: message_id},
    }


def read(up_to: int, *, newest: int, unread: int) -> dict:
    return {
        "conversation_id": CONVERSATION,
        "read_up_to": up_to,
        "unread": unread,
        "newest_message_id": newest,
    }


@pytest.fixture
def inbox() -> InboxState:
    root = State(_reflex_internal_init=True)
    session_state = root.get_substate(SessionState.get_full_name().split("."))
    session_state.user_id = ME
    state = root.get_substate(InboxState.get_full_name().split("."))
    state.rows = [
        ConversationRow(
            id=CONVERSATION,
            title="Other",
            initials="O",
            is_group=False,
            preview="message 10",
            preview_is_mine=False,
            last_activity_at="2030-01-01T00:00:10+00:00",
            has_messages=True,
            last_message_id=10,
            unread=2,
            search_text="other",
            href=f"/messages/{CONVERSATION}",
        )
    ]
    state._counted_from = {CONVERSATION: (8, 10)}
    state.loaded = True
    return state


@pytest.fixture
def rereads(inbox: InboxState) -> list[int]:
    """The conversations the receiver went back to the database for."""
    asked: list[int] = []

    async def record_reread(conversation_id: int, user_id: int) -> None:
        asked.append(conversation_id)

    object.__setattr__(inbox, "_upsert", record_reread)
    return asked


def shown(inbox: InboxState) -> tuple[str, int]:
    row = inbox.get_value("rows")[0]
    return row["preview"], row["unread"]


def push(inbox: InboxState, payload: dict) -> None:
    run_async(inbox._on_conversation_changed, payload)


def test_a_late_older_message_changes_neither_preview_nor_count(
    inbox: InboxState, rereads: list[int]
) -> None:
    push(inbox, sent(12, unread=4, read_position=8))
    assert shown(inbox) == ("message 12", 4)
    push(inbox, sent(11, unread=3, read_position=8))  # overtaken on the way
    assert shown(inbox) == ("message 12", 4)
    assert rereads == []


def test_a_read_elsewhere_clears_the_count_and_an_older_count_cannot_bring_it_back(
    inbox: InboxState, rereads: list[int]
) -> None:
    push(inbox, read(12, newest=12, unread=0))  # read in another tab, up to 12
    assert shown(inbox) == ("message 10", 0)
    # The push of message 12, counted before that read, arrives after it.
    push(inbox, sent(12, unread=4, read_position=8))
    assert shown(inbox) == ("message 12", 0)
    push(inbox, sent(13, unread=1, read_position=12))
    assert shown(inbox) == ("message 13", 1)
    assert rereads == []


def test_counts_that_crossed_are_settled_by_the_database(
    inbox: InboxState, rereads: list[int]
) -> None:
    push(inbox, read(11, newest=11, unread=0))
    # Counted before that read, but with a newer message: neither is behind on both.
    push(inbox, sent(12, unread=4, read_position=8))
    assert rereads == [CONVERSATION]


def test_the_conversation_this_tab_shows_never_gets_a_badge(
    inbox: InboxState, rereads: list[int]
) -> None:
    inbox._read_here(CONVERSATION)
    assert shown(inbox) == ("message 10", 0)
    push(inbox, sent(11, unread=3, read_position=8))
    assert shown(inbox) == ("message 11", 0)
    assert rereads == []


def test_the_header_count_and_the_search_count_follow_the_rows(
    inbox: InboxState, rereads: list[int]
) -> None:
    assert inbox.total_unread == 2
    push(inbox, sent(11, unread=3, read_position=8))
    assert inbox.total_unread == 3
    inbox._read_here(CONVERSATION)
    assert inbox.total_unread == 0
    assert inbox.match_count == 1
    inbox.search = "  OTH"
    assert inbox.match_count == 1
    inbox.search = "nobody"
    assert inbox.match_count == 0
