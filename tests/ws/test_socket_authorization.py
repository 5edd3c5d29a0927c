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
from chat_app.models import AuthSession, ConversationMember, Message, User
from chat_app.states.account import AccountState
from chat_app.states.auth import AuthFormState
from chat_app.states.inbox import TIERS, InboxState
from chat_app.states.session import SessionState
from chat_app.states.thread import PARTS as THREAD_PARTS
from chat_app.states.thread import ThreadState
from tests.support.reflex_client import ReflexSocket, handler_name, run_async
from tests.ws.thread_page import open_thread_page

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


def attack_cases(
    conversation_id: int, alice_session_id: int, alice_email: str
) -> list[tuple[type, str, dict]]:
    """Every public handler of every state, each called as an attacker would call it."""
    return [
        (State, "setvar", {"var_name": "conversation_id", "value": conversation_id}),
        (SessionState, "load_user", {}),
        (SessionState, "require_sign_in", {}),
        (SessionState, "leave_if_signed_in", {}),
        (AuthFormState, "clear_errors", {}),
        (AuthFormState, "sign_in", {"form": {"email": alice_email, "password": "guessing-123"}}),
        (
            AuthFormState,
            "sign_up",
            {"form": {"name": "Alice Smith", "email": alice_email, "password": "password123"}},
        ),
        (InboxState, "load", {}),
        (InboxState, "search_changed", {"value": "alice"}),
        (InboxState, "new_dialog_changed", {"is_open": True}),
        (InboxState, "start_conversation", {"form": {"emails": "not-an-email"}}),
        (ThreadState, "open", {}),
        (ThreadState, "load_older", {}),
        (ThreadState, "send", {"form": {"body": "mallory was here"}, "client_id": "m-1"}),
        (ThreadState, "typing", {"_value": "x"}),
        (ThreadState, "retry", {"client_id": "m-1"}),
        (ThreadState, "visibility_changed", {"hidden": False}),
        (ThreadState, "setvar", {"var_name": "conversation_id", "value": conversation_id}),
        (ThreadState, "send", {"form": {"body": "mallory again"}, "client_id": "m-2"}),
        (ThreadState, "close", {}),
        (AccountState, "load", {}),
        (AccountState, "rename", {"form": {"name": "Mallory Renamed"}}),
        (
            AccountState,
            "change_password",
            {
                "form": {
                    "current_password": "x",
                    "new_password": "password999",
                    "confirm_password": "password999",
                }
            },
        ),
        (AccountState, "revoke", {"session_id": alice_session_id}),
        (AccountState, "revoke_others", {}),
        (SessionState, "sign_out", {}),
    ]


def _app_states() -> list[type]:
    found, pending = [], list(State.get_substates())
    while pending:
        state_cls = pending.pop()
        pending.extend(state_cls.get_substates())
        if state_cls.__module__.startswith("chat_app."):
            found.append(state_cls)
    return found


def test_every_public_handler_has_an_attack_case():
    """A handler added later without a case here fails the suite."""
    covered = {(state_cls, name) for state_cls, name, _ in attack_cases(1, 1, "a@b.c")}
    public = {
        (state_cls, name)
        for state_cls in _app_states()
        for name in state_cls.event_handlers
        if name != "setvar" or state_cls is ThreadState
    }
    missing = sorted(f"{cls.__name__}.{name}" for cls, name in public - covered)
    assert not missing, f"handlers without an attack case: {missing}"
    assert len(public) >= 20


async def _attack(
    app_url: str, cookie: str | None, conversation_id: int, alice_session_id: int, alice_email: str
) -> ReflexSocket:
    socket = ReflexSocket(app_url, cookie=cookie)
    await socket.connect()
    thread_path = f"/messages/{conversation_id}"
    thread_query = {"conversation_id": str(conversation_id)}
    await socket.send(handler_name(State, "hydrate"), path=thread_path, query=thread_query)
    await socket.settle()
    for state_cls, handler, payload in attack_cases(conversation_id, alice_session_id, alice_email):
        await socket.send(
            handler_name(state_cls, handler), payload, path=thread_path, query=thread_query
        )
        await socket.settle(quiet=0.3)
    await socket.close()
    return socket


def test_a_stranger_and_a_signed_out_socket_read_and_write_nothing(
    app_server, app_db, make_account
):
    alice, bob, mallory = (
        make_account("Alice Smith"),
        make_account("Bob Jones"),
        make_account("Mallory"),
    )
    conversation_id = _conversation_with_secret(app_server.url, alice, bob)
    with Session(app_db) as session:
        before = session.exec(select(func.count()).select_from(Message)).one()
        alice_session_id = session.exec(
            select(AuthSession.id).where(AuthSession.user_id == alice.id)
        ).first()
        people_before = [
            session.get(User, alice.id).model_dump(),
            session.get(User, bob.id).model_dump(),
        ]
        members_before = session.exec(
            select(ConversationMember).order_by(ConversationMember.user_id)
        ).all()
        members_before = [member.model_dump() for member in members_before]

    async def both() -> tuple[ReflexSocket, ReflexSocket]:
        as_mallory = await _attack(
            app_server.url,
            f"chat_app.session_token={mallory.token}",
            conversation_id,
            alice_session_id,
            alice.email,
        )
        signed_out = await _attack(
            app_server.url, None, conversation_id, alice_session_id, alice.email
        )
        return as_mallory, signed_out

    as_mallory, signed_out = run_async(both)

    for socket in (as_mallory, signed_out):
        received = socket.text()
        assert len(socket.frames) > 3  # the socket was answered: the silence below means something
        assert SECRET not in received
        assert alice.email not in received and bob.email not in received
        assert "Alice Smith" not in received and "Bob Jones" not in received
        assert True in socket.values_of(ThreadState, "not_found")
        for part in THREAD_PARTS:
            assert not any(socket.values_of(ThreadState, part))
        for tier in TIERS:
            assert not any(socket.values_of(InboxState, tier))
    assert "Mallory" in as_mallory.values_of(SessionState, "user_name")
    assert not any(signed_out.values_of(SessionState, "user_id"))

    with Session(app_db) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == before
        assert session.exec(select(Message).where(Message.body.like("mallory%"))).first() is None
        assert session.get(AuthSession, alice_session_id) is not None  # Alice is still signed in
        assert [
            session.get(User, alice.id).model_dump(),
            session.get(User, bob.id).model_dump(),
        ] == people_before
        members_after = session.exec(
            select(ConversationMember).order_by(ConversationMember.user_id)
        ).all()
        assert [member.model_dump() for member in members_after] == members_before
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
        await open_thread_page(socket, conversation_id)
        await socket.close()
        return socket

    socket = run_async(as_bob)
    assert SECRET in socket.text()
    assert socket.delta_value(ThreadState, "not_found") is False
    # The thread travels in the vars the attack test above watches.
    assert [row["body"] for row in socket.delta_value(ThreadState, "latest")] == [SECRET]
