"""The thread travels in parts, so no frame re-sends more than a few rows."""

from __future__ import annotations

import gc
import pickle
from datetime import UTC, datetime

import pytest
from reflex.state import State

import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
from chat_app.domain.conversations import MessageView
from chat_app.states import thread as thread_module
from chat_app.states.thread import (
    BLOCK_ROWS,
    BLOCKS,
    PARTS,
    WINDOW_KEEP,
    WINDOW_MAX,
    MessageRow,
    ThreadState,
    message_row,
)


def row(message_id: int, *, pending: str = "") -> MessageRow:
    return MessageRow(
        id=0 if pending else message_id,
        client_id=pending or f"c{message_id}",
        sender_id=1,
        sender_name="Ada",
        body=f"message {message_id}",
        created_at="",
        status="sending" if pending else "sent",
        error="",
    )


@pytest.fixture
def thread() -> ThreadState:
    root = State(_reflex_internal_init=True)
    return root.get_substate(ThreadState.get_full_name().split("."))


def sent_again(thread: ThreadState, rows: list[MessageRow]) -> dict[str, int]:
    """Show `rows`; return which parts would be sent to the page, with their sizes in rows."""
    thread.dirty_vars.clear()
    thread._show(rows)
    assert thread._shown() == rows  # the page always gets the whole thread, in order
    return {part: len(thread.get_value(part)) for part in PARTS if part in thread.dirty_vars}


def test_a_page_travels_in_blocks_and_a_new_message_resends_a_few_rows(
    thread: ThreadState,
) -> None:
    rows = [row(i) for i in range(1, 51)]
    assert sent_again(thread, rows) == {
        "block_0": 10,
        "block_1": 10,
        "block_2": 10,
        "block_3": 10,
        "latest": 10,
    }
    # Each new message re-sends the latest part; a full one becomes the next block.
    next_id = 51
    for block in BLOCKS[4:]:
        rows = rows + [row(next_id)]
        next_id += 1
        assert sent_again(thread, rows) == {block: BLOCK_ROWS, "latest": 1}
        for _ in range(BLOCK_ROWS - 1):
            rows = rows + [row(next_id)]
            next_id += 1
            assert sent_again(thread, rows) == {"latest": len(thread.get_value("latest"))}
            assert len(thread.get_value("latest")) <= BLOCK_ROWS
    # With every block full, the blocks fold into the earlier part: one large frame,
    # after which the blocks take the messages that follow again.
    rows = rows + [row(next_id)]
    folded = sent_again(thread, rows)
    assert folded["earlier"] == len(rows) - BLOCK_ROWS and folded["latest"] == BLOCK_ROWS
    assert set(folded) == set(PARTS)  # every block emptied
    rows = rows + [row(next_id + 1)]
    assert sent_again(thread, rows) == {"block_0": BLOCK_ROWS, "latest": 1}


def test_opening_a_page_sends_one_part_per_frame(thread: ThreadState) -> None:
    rows = [row(i) for i in range(1, 51)]
    frames = []
    thread.dirty_vars.clear()
    for _ in thread._show_part_by_part(rows):
        frames.append(set(thread.dirty_vars))
        thread.dirty_vars.clear()
    frames.append(set(thread.dirty_vars))
    assert frames == [{"latest"}, {"block_3"}, {"block_2"}, {"block_1"}, {"block_0"}]
    assert thread._shown() == rows


def test_pending_sends_stay_in_the_latest_part(thread: ThreadState) -> None:
    rows = [row(i) for i in range(1, 60)] + [row(0, pending="p1"), row(0, pending="p2")]
    sent_again(thread, rows)
    assert [r["client_id"] for r in thread.get_value("latest")[-2:]] == ["p1", "p2"]
    assert all(r["id"] for part in PARTS[:-1] for r in thread.get_value(part))
    # Many pending sends wait in the latest part: blocks hold stored messages only.
    rows = rows + [row(0, pending=f"q{i}") for i in range(BLOCK_ROWS * 2)]
    assert set(sent_again(thread, rows)) == {"latest"}


def test_a_late_message_resends_only_the_blocks_from_where_it_lands(thread: ThreadState) -> None:
    rows = [row(i) for i in range(2, 102, 2)]  # even ids: 50 messages
    sent_again(thread, rows)
    late = sorted([*rows, row(45)], key=lambda r: r["id"])  # lands in block_2
    # block_2 onwards shift by one row; the eleventh latest row fills block_4.
    assert set(sent_again(thread, late)) == {"block_2", "block_3", "block_4", "latest"}


def test_unchanged_rows_send_nothing_and_older_pages_go_in_front(thread: ThreadState) -> None:
    rows = [row(i) for i in range(100, 150)]
    sent_again(thread, rows)
    assert sent_again(thread, list(rows)) == {}
    older = [row(i) for i in range(50, 100)]
    assert sent_again(thread, older + rows) == {"earlier": 50}
    oldest = [row(i) for i in range(1, 50)]
    assert sent_again(thread, oldest + older + rows) == {"earlier": 99}
    cleared = sent_again(thread, [])
    assert set(cleared) == {"earlier", "block_0", "block_1", "block_2", "block_3", "latest"}


def test_a_full_window_drops_its_oldest_rows_a_hundred_at_once(thread: ThreadState) -> None:
    thread._show([row(i) for i in range(1, WINDOW_MAX + 1)])
    thread._merge([row(WINDOW_MAX + 1)], viewer_id=1)
    shown = [r["id"] for r in thread._shown()]
    assert shown == list(range(WINDOW_MAX + 2 - WINDOW_KEEP, WINDOW_MAX + 2))
    # The messages after it re-send a few rows each, not the whole window.
    for message_id in range(WINDOW_MAX + 2, WINDOW_MAX + 12):
        thread.dirty_vars.clear()
        thread._merge([row(message_id)], viewer_id=1)
        assert thread._shown()[-1]["id"] == message_id
        assert "earlier" not in thread.dirty_vars
        assert len(thread.dirty_vars & set(PARTS)) <= 2


def test_a_long_thread_laid_out_afresh_keeps_its_newest_rows_in_blocks(
    thread: ThreadState,
) -> None:
    rows = [row(i) for i in range(1, 154)]
    assert sent_again(thread, rows) == {
        "earlier": 70,
        **{part: BLOCK_ROWS for part in BLOCKS},
        "latest": 3,
    }


def stored(
    message_id: int, *, sender_id: int, client_id: str, sender_name: str = ""
) -> MessageView:
    return MessageView(
        id=message_id,
        conversation_id=1,
        sender_id=sender_id,
        sender_name=sender_name or f"user {sender_id}",
        body=f"message {message_id}",
        client_message_id=client_id,
        created_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    )


def test_tabs_showing_a_message_share_one_row_that_refuses_changes() -> None:
    first = message_row(stored(70001, sender_id=2, client_id="k1"))
    again = message_row(stored(70001, sender_id=2, client_id="k1"))
    assert first is again
    assert first["created_at"] == "2026-11-24T12:00:00.000Z"
    with pytest.raises(TypeError):
        first["body"] = "changed in one tab, seen in all"
    with pytest.raises(TypeError):
        first.update(body="changed")
    # Reflex's Redis and disk state managers keep states pickled: a state loaded shares the row too.
    assert pickle.loads(pickle.dumps(first)) is first
    saved = pickle.dumps([first])

    # Once no tab shows it, the row is gone: the sharing keeps nothing alive.
    del first, again
    gc.collect()
    assert 70001 not in thread_module._stored_rows
    [loaded] = pickle.loads(saved)
    assert loaded["body"] == "message 70001"
    assert message_row(stored(70001, sender_id=2, client_id="k1")) is loaded


def test_a_stored_row_replaces_only_the_viewers_own_pending_twin(thread: ThreadState) -> None:
    thread._show([row(0, pending="same-id")])  # the viewer (user 1) is sending

    # Someone else's message with the same client id is not the viewer's send.
    thread._merge([message_row(stored(70010, sender_id=2, client_id="same-id"))], viewer_id=1)
    assert [(r["id"], r["status"]) for r in thread._shown()] == [(70010, "sent"), (0, "sending")]

    thread._merge([message_row(stored(70011, sender_id=1, client_id="same-id"))], viewer_id=1)
    assert [r["id"] for r in thread._shown()] == [70010, 70011]


def test_a_renamed_sender_gets_a_new_row_and_shown_rows_stay_as_they_were() -> None:
    before = message_row(stored(70020, sender_id=2, client_id="k", sender_name="Ada"))
    saved = pickle.dumps(before)
    after = message_row(stored(70020, sender_id=2, client_id="k", sender_name="Ada L."))
    assert (before["sender_name"], after["sender_name"]) == ("Ada", "Ada L.")
    assert message_row(stored(70020, sender_id=2, client_id="k", sender_name="Ada L.")) is after
    # A tab's state saved before the rename loads with the name it showed.
    assert pickle.loads(saved)["sender_name"] == "Ada"


def test_merged_rows_land_in_id_order_once_whatever_order_they_come_in(
    thread: ThreadState,
) -> None:
    thread._show([row(i) for i in (1, 2, 4)] + [row(0, pending="mine")])

    # The usual push: newer than everything shown.
    assert thread._merge([row(5)], viewer_id=2) == 5
    # A message that committed late, one shown again, and one already there, in any order.
    assert thread._merge([row(6), row(3), row(2)], viewer_id=2) == 6
    assert thread._merge([row(1)], viewer_id=2) == 6

    assert [(r["id"], r["client_id"]) for r in thread._shown()] == [
        (1, "c1"),
        (2, "c2"),
        (3, "c3"),
        (4, "c4"),
        (5, "c5"),
        (6, "c6"),
        (0, "mine"),
    ]
    assert thread._merge([], viewer_id=2) == 6
