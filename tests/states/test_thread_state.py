"""The thread travels in two parts, so a new message re-sends only the latest few rows."""

from __future__ import annotations

import pytest
from reflex.state import State

import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
from chat_app.states.thread import LATEST_KEEP, LATEST_MAX, MessageRow, ThreadState


def row(message_id: int, *, pending: str = "") -> MessageRow:
    return MessageRow(
        id=0 if pending else message_id,
        client_id=pending or f"c{message_id}",
        sender_id=1,
        sender_name="Ada",
        body=f"message {message_id}",
        created_at="",
        mine=True,
        status="sending" if pending else "sent",
        error="",
    )


@pytest.fixture
def thread() -> ThreadState:
    root = State(_reflex_internal_init=True)
    return root.get_substate(ThreadState.get_full_name().split("."))


def sent_again(thread: ThreadState, rows: list[MessageRow]) -> set[str]:
    """Show `rows`; return which of the two parts would be sent to the page."""
    thread.dirty_vars.clear()
    thread._show(rows)
    assert thread._shown() == rows  # the page always gets the whole thread, in order
    return thread.dirty_vars & {"earlier", "latest"}


def test_a_new_message_resends_only_the_latest_rows(thread: ThreadState) -> None:
    rows = [row(i) for i in range(1, 51)]
    assert sent_again(thread, rows) == {"earlier", "latest"}
    assert len(thread.get_value("latest")) == LATEST_KEEP

    for message_id in range(51, 51 + LATEST_MAX - LATEST_KEEP):
        rows = rows + [row(message_id)]
        assert sent_again(thread, rows) == {"latest"}
    # One more and the latest part folds into the earlier one.
    rows = rows + [row(999)]
    assert sent_again(thread, rows) == {"earlier", "latest"}
    assert len(thread.get_value("latest")) == LATEST_KEEP


def test_pending_sends_stay_in_the_latest_part(thread: ThreadState) -> None:
    rows = [row(i) for i in range(1, 60)] + [row(0, pending="p1"), row(0, pending="p2")]
    sent_again(thread, rows)
    assert [r["client_id"] for r in thread.get_value("latest")[-2:]] == ["p1", "p2"]
    assert all(r["id"] for r in thread.get_value("earlier"))


def test_unchanged_rows_send_nothing_and_older_pages_refold(thread: ThreadState) -> None:
    rows = [row(i) for i in range(100, 150)]
    sent_again(thread, rows)
    assert sent_again(thread, list(rows)) == set()
    older = [row(i) for i in range(50, 100)]
    assert sent_again(thread, older + rows) == {"earlier"}
    assert sent_again(thread, []) == {"earlier", "latest"}
