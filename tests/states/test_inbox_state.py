"""The conversation list's receiver: previews and counts never go back when pushes cross,
and a long list re-sends only the tiers a change reaches.

The receiver runs on a real state tree of the app (no server needed); only the
database re-read it falls back on is recorded instead of run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from reflex.state import State

import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
from chat_app.domain.conversations import MessageView
from chat_app.states.inbox import TIERS, ConversationRow, InboxState
from chat_app.states.session import SessionState
from tests.support.reflex_client import run_async

ME, OTHER, CONVERSATION = 7, 8, 42


def message(
    message_id: int, sender_id: int = OTHER, *, conversation_id: int = CONVERSATION, hour: int = 0
) -> MessageView:
    return MessageView(
        id=message_id,
        conversation_id=conversation_id,
        sender_id=sender_id,
        sender_name="Other",
        body=f"message {message_id}",
        client_message_id=f"c{message_id}",
        created_at=datetime(2030, 1, 1, hour, 0, message_id % 60, tzinfo=UTC),
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
    state._show(
        [
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
    )
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
    row = inbox._listed()[0]
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


def conversation(conversation_id: int, minute: int) -> ConversationRow:
    return ConversationRow(
        id=conversation_id,
        title=f"Person {conversation_id}",
        initials="P",
        is_group=False,
        preview="earlier",
        preview_is_mine=False,
        last_activity_at=f"2030-01-01T{minute // 60:02d}:{minute % 60:02d}:00+00:00",
        has_messages=True,
        last_message_id=10,
        unread=0,
        search_text=f"person {conversation_id}",
        href=f"/messages/{conversation_id}",
    )


LISTED = 100


@pytest.fixture
def long_list() -> InboxState:
    """A list of 100 conversations, ids 1 to 100, most recent (id 1) first."""
    root = State(_reflex_internal_init=True)
    root.get_substate(SessionState.get_full_name().split(".")).user_id = ME
    state = root.get_substate(InboxState.get_full_name().split("."))
    state._show([conversation(id_, minute=LISTED - id_) for id_ in range(1, LISTED + 1)])
    state._counted_from = {id_: (10, 10) for id_ in range(1, LISTED + 1)}
    state.loaded = True
    root._clean()
    return state


def message_in(conversation_id: int, message_id: int) -> dict:
    """A message newer than every row of the long list, in `conversation_id`."""
    return {
        "conversation_id": conversation_id,
        "sender_id": OTHER,
        "message": message(message_id, conversation_id=conversation_id, hour=2),
        "previous_message_id": 10,
        "unread_by_member": {ME: 1, OTHER: 0},
        "read_position_by_member": {ME: 10, OTHER: message_id},
    }


def tiers_sent(inbox: InboxState) -> dict[str, list[int]]:
    """The tiers the tab's next frame carries, as conversation ids."""
    root = inbox._get_root_state()
    delta = run_async(root._get_resolved_delta).get(InboxState.get_full_name(), {})
    root._clean()
    return {
        tier: [row["id"] for row in delta[f"{tier}_rx_state_"]]
        for tier in TIERS
        if f"{tier}_rx_state_" in delta
    }


def listed_ids(inbox: InboxState) -> list[int]:
    return [row["id"] for row in inbox._listed()]


def test_a_message_near_the_top_of_a_long_list_resends_only_the_first_tier(
    long_list: InboxState,
) -> None:
    push(long_list, message_in(3, 11))
    assert listed_ids(long_list) == [3, 1, 2, *range(4, LISTED + 1)]
    assert tiers_sent(long_list) == {"rows_0": [3, 1, 2, 4, 5, 6, 7, 8]}
    assert long_list.total_unread == 1

    push(long_list, message_in(3, 12))  # the row on top changes in place
    assert tiers_sent(long_list) == {"rows_0": [3, 1, 2, 4, 5, 6, 7, 8]}
    assert long_list._listed()[0]["preview"] == "message 12"


def test_a_message_further_down_resends_the_tiers_down_to_its_row_and_no_more(
    long_list: InboxState,
) -> None:
    push(long_list, message_in(30, 11))  # the 30th row: in the third tier (rows 25 to 56)
    expected = [30, *range(1, 30), *range(31, LISTED + 1)]
    assert listed_ids(long_list) == expected
    sent = tiers_sent(long_list)
    assert sorted(sent) == ["rows_0", "rows_1", "rows_2"]
    assert [id_ for tier in sent.values() for id_ in tier] == expected[:56]
    # What the page now shows, tier after tier, is the whole list in order.
    assert [row["id"] for tier in TIERS for row in long_list.get_value(tier)] == expected


def test_a_row_goes_to_its_place_by_activity_not_always_to_the_top(
    long_list: InboxState,
) -> None:
    long_list._place(
        {**conversation(200, minute=0), "last_activity_at": "2030-01-01T00:49:30+00:00"}
    )
    ids = listed_ids(long_list)
    # After 00:50 (id 50), before 00:49 (id 51).
    assert ids[ids.index(200) - 1 : ids.index(200) + 2] == [50, 200, 51]
    assert len(ids) == LISTED + 1
    assert sorted(tiers_sent(long_list)) == ["rows_2", "rows_3"]


def test_a_shorter_list_empties_the_tiers_it_no_longer_reaches(long_list: InboxState) -> None:
    long_list._show(long_list._listed()[:5])
    assert tiers_sent(long_list) == {
        "rows_0": [1, 2, 3, 4, 5],
        "rows_1": [],
        "rows_2": [],
        "rows_3": [],
    }  # the last tier was empty already: not re-sent
    assert long_list.match_count == 5
