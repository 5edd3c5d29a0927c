"""Crafted websocket events: a signed-in stranger and a signed-out socket try every way in.

Alice and Bob talk; Mallory (signed in) and a socket with no cookie send Reflex
events by hand — opening, paging, posting to, typing in and retrying in Alice
and Bob's conversation, revoking Alice's session. Nothing may come back in any
frame, and the database must not change.
"""

from __future__ import annotations

import uuid

import httpx
from reflex.state import State
from sqlalchemy import func
from sqlmodel import Session, select

import chat_app.chat_app  # noqa: F401  (builds the state tree, as the server does)
from chat_app.models import AuthSession, Message
from chat_app.states.account import AccountState
from chat_app.states.inbox import InboxState
from chat_app.states.session import SessionState
from chat_app.states.thread import ThreadState
from tests.support.reflex_client import ReflexSocket, handler_name, run_async

SECRET = "the launch code is 0000"


def _conversation_with_secret(app_url: str, alice, bob) -> int:
    auth = {"Authorization": f"Bearer {alice.token}"}
    created = httpx.post(
        f"{app_url}/api/conversations", json={"emails": [bob.email]}, headers=auth, timeout=20
    )
    conversation_id = created.json()["id"]
    httpx.post(
        f"{app_url}/api/conversations/{conversation_id}/messages",
        json={"content": SECRET, "client_message_id": uuid.uuid4().hex},
        headers=auth,
        timeout=20,
    ).raise_for_status()
    return conversation_id


async def _attack(app_url: str, cookie: str | None, conversation_id: int, alice_session_id: int) -> ReflexSocket:
    socket = ReflexSocket(app_url, cookie=cookie)
    await socket.connect()
    thread_path = f"/messages/{conversation_id}"
    thread_query = {"conversation_id": str(conversation_id)}
    await socket.send(handler_name(State, "hydrate"), path=thread_path, query=thread_query)
    await socket.settle()
    attempts = [
        (SessionState, "require_sign_in", {}),
        (InboxState, "load", {}),
        (ThreadState, "open", {}),
        (ThreadState, "load_older", {}),
        (ThreadState, "send", {"form": {"body": "mallory was here"}, "client_id": "m-1"}),
        (ThreadState, "typing", {"_value": "x"}),
        (ThreadState, "retry", {"client_id": "m-1"}),
        (ThreadState, "visibility_changed", {"hidden": False}),
        (State, "setvar", {"var_name": "conversation_id", "value": conversation_id}),
        (ThreadState, "setvar", {"var_name": "conversation_id", "value": conversation_id}),
        (ThreadState, "send", {"form": {"body": "mallory again"}, "client_id": "m-2"}),
        (InboxState, "start_conversation", {"form": {"emails": "not-an-email"}}),
        (AccountState, "load", {}),
        (AccountState, "revoke", {"session_id": alice_session_id}),
        (AccountState, "revoke_others", {}),
    ]
    for state_cls, handler, payload in attempts:
        await socket.send(handler_name(state_cls, handler), payload, path=thread_path, query=thread_query)
        await socket.settle(quiet=0.3)
    await socket.close()
    return socket


def test_a_stranger_and_a_signed_out_socket_read_and_write_nothing(app_server, app_db, make_account):
    alice, bob, mallory = make_account("Alice Smith"), make_account("Bob Jones"), make_account("Mallory")
    conversation_id = _conversation_with_secret(app_server.url, alice, bob)
    with Session(app_db) as session:
        before = session.exec(select(func.count()).select_from(Message)).one()
        alice_session_id = session.exec(
            select(AuthSession.id).where(AuthSession.user_id == alice.id)
        ).first()

    async def both() -> tuple[ReflexSocket, ReflexSocket]:
        as_mallory = await _attack(
            app_server.url, f"chat_app.session_token={mallory.token}", conversation_id, alice_session_id
        )
        signed_out = await _attack(app_server.url, None, conversation_id, alice_session_id)
        return as_mallory, signed_out

    as_mallory, signed_out = run_async(both)

    for socket in (as_mallory, signed_out):
        received = socket.text()
        assert len(socket.frames) > 3  # the socket was answered: the silence below means something
        assert SECRET not in received
        assert alice.email not in received and bob.email not in received
        assert "Alice Smith" not in received and "Bob Jones" not in received
        assert socket.delta_value(ThreadState, "not_found") is True
    assert as_mallory.delta_value(SessionState, "user_name") == "Mallory"
    assert signed_out.delta_value(SessionState, "user_id") in (None, 0)

    with Session(app_db) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == before
        assert session.exec(select(Message).where(Message.body.like("mallory%"))).first() is None
        assert session.get(AuthSession, alice_session_id) is not None  # Alice is still signed in
    me = httpx.get(
        f"{app_server.url}/api/auth/get-session",
        headers={"Authorization": f"Bearer {alice.token}"},
        timeout=20,
    )
    assert me.json()["user"]["email"] == alice.email


def test_a_member_socket_does_read_the_conversation(app_server, make_account):
    """The control case: the same events from Bob's socket do show the message."""
    alice, bob = make_account("Alice Smith"), make_account("Bob Jones")
    conversation_id = _conversation_with_secret(app_server.url, alice, bob)

    async def as_bob() -> ReflexSocket:
        socket = ReflexSocket(app_server.url, cookie=f"chat_app.session_token={bob.token}")
        await socket.connect()
        path, query = f"/messages/{conversation_id}", {"conversation_id": str(conversation_id)}
        for state_cls, handler in ((State, "hydrate"), (SessionState, "require_sign_in"), (ThreadState, "open")):
            await socket.send(handler_name(state_cls, handler), path=path, query=query)
            await socket.settle(quiet=0.3)
        await socket.close()
        return socket

    socket = run_async(as_bob)
    assert SECRET in socket.text()
    assert socket.delta_value(ThreadState, "not_found") is False
