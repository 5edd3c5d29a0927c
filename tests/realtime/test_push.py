"""A worker applies pushes only to tabs whose socket it still holds.

When a tab reconnects to another worker, it rebuilds its state there; the state
left behind on the old worker must not change the page any more. These tests
run the real push layer on the real app's states, in process, against a real
database, and move the tab's socket record (as Reflex's token manager does when
the tab reconnects elsewhere) before the push takes the tab's lock, or while its
receivers run. `emit_update` is replaced by a recorder: each call is a delta
Reflex would have sent or handed over to the socket's new worker.
"""

from __future__ import annotations

import asyncio
import functools
import uuid

import pytest
import reflex as rx
from reflex.utils.token_manager import SocketRecord
from sqlmodel import Session

from chat_app.chat_app import app
from chat_app.domain import conversations as conv
from chat_app.domain.conversations import MessageView
from chat_app.models import User
from chat_app.realtime import push, topics
from chat_app.states.session import SessionState
from chat_app.states.thread import ThreadState, message_row
from tests.support.reflex_client import run_async

ANOTHER_WORKER = "another-worker"


def send(session: Session, user: User, conversation_id: int, body: str) -> conv.SendResult:
    return conv.send_message(
        session=session,
        user_id=user.id,
        conversation_id=conversation_id,
        body=body,
        client_message_id=uuid.uuid4().hex,
    )


async def push_to_a_tab(
    *,
    viewer: User,
    shown: list[MessageView],
    result: conv.SendResult,
    move_socket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[rx.StateUpdate], list[int]]:
    """Open a tab of `viewer` showing `shown`, push `result` to it; return the deltas and its rows.

    `move_socket`: "never", "before" the push takes the tab's lock, or "during"
    its receivers (at their first wait, the thread's catch-up read).
    """
    namespace = app.event_namespace
    assert namespace is not None
    token_manager = namespace._token_manager
    tab = uuid.uuid4().hex
    token_manager.token_to_socket[tab] = SocketRecord(
        instance_id=token_manager.instance_id, sid=f"sid-{tab}"
    )
    emitted: list[rx.StateUpdate] = []

    async def record(update: rx.StateUpdate, token: str) -> None:
        if token == tab:
            emitted.append(update)

    monkeypatch.setattr(namespace, "emit_update", record)

    def move() -> None:
        token_manager.token_to_socket[tab] = SocketRecord(
            instance_id=ANOTHER_WORKER, sid=f"sid-{tab}-there"
        )

    try:
        async with app.modify_state(rx.BaseStateToken(ident=tab, cls=ThreadState)) as root:
            session_state = await root.get_state(SessionState)
            session_state.user_id, session_state.user_name = viewer.id, viewer.name
            thread = await root.get_state(ThreadState)
            thread.conversation_id = result.message.conversation_id
            thread._show([message_row(view) for view in shown])
        emitted.clear()  # the tab's opening
        if move_socket == "before":
            move()
        elif move_socket == "during":
            asyncio.get_running_loop().call_soon(move)
        payload = topics.new_message_payload(result)
        await push._apply(tab, [(viewer.id, topics.CONVERSATION_CHANGED, payload)])
        async with app.modify_state(rx.BaseStateToken(ident=tab, cls=ThreadState)) as root:
            thread = await root.get_state(ThreadState)
            rows = [row["id"] for row in thread._shown()]
            root._clean()  # this look sends nothing
        return emitted, rows
    finally:
        token_manager.token_to_socket.pop(tab, None)
        app.state_manager.states.pop(tab, None)  # type: ignore[attr-defined]


@pytest.fixture
def thread_with_a_gap(session: Session, ada: User, bob: User):
    """Bob's tab shows the first message; the push is the third (so the tab catches up)."""
    conversation_id, _ = conv.start_conversation(
        session=session, creator_id=ada.id, emails=[bob.email]
    )
    first = send(session, ada, conversation_id, "first").message
    second = send(session, ada, conversation_id, "second").message
    third = send(session, ada, conversation_id, "third")
    return [first], third, [first.id, second.id, third.message.id]


@pytest.mark.parametrize("move_socket", ["never", "before", "during"])
def test_a_push_changes_the_page_only_while_this_worker_holds_the_tabs_socket(
    move_socket: str, bob: User, thread_with_a_gap, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown, pushed, caught_up = thread_with_a_gap
    emitted, rows = run_async(
        functools.partial(
            push_to_a_tab,
            viewer=bob,
            shown=shown,
            result=pushed,
            move_socket=move_socket,
            monkeypatch=monkeypatch,
        )
    )
    if move_socket == "never":
        assert rows == caught_up
        assert len(emitted) == 1
        assert "third" in str(emitted[0].delta)
    elif move_socket == "before":
        assert rows == [shown[0].id]  # the receivers did not run
        assert emitted == []
    else:
        assert rows == caught_up  # the receivers ran, and caught up from the database...
        assert emitted == []  # ...but no delta left for the page, now another worker's
