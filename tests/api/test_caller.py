"""`Caller.run`: a route's session check and its work, in one database session and one commit."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, func, select

from chat_app.api.common import Caller, _as_session_user
from chat_app.clock import utcnow
from chat_app.domain import conversations, sessions
from chat_app.domain.errors import NotAuthenticated, NotFound
from chat_app.models import AuthSession, Message, User
from tests.domain.support import make_user
from tests.support.databases import round_trips
from tests.support.reflex_client import run_async


@pytest.fixture
def conversation_id(session: Session, ada: User) -> int:
    bob = make_user(session, "Bob")
    created, _ = conversations.start_conversation(
        session=session, creator_id=ada.id, emails=[bob.email]
    )
    return created


@pytest.fixture
def stale_token(session: Session, ada: User) -> tuple[int, str]:
    """Ada's session, last used two minutes ago: the next request slides it."""
    auth_session, token = sessions.create_session(
        session=session, user_id=ada.id, now=utcnow() - timedelta(minutes=2)
    )
    return auth_session.id, token


def run(token: str, work, **kwargs):
    return run_async(functools.partial(Caller(token=token).run, work, **kwargs))


def last_used(session: Session, session_id: int):
    session.expire_all()
    return session.get(AuthSession, session_id).last_used_at


def messages(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Message)).one()


def test_a_send_stores_the_message_and_the_sessions_slide_in_one_commit(
    engine: Engine, session: Session, stale_token, conversation_id: int
) -> None:
    session_id, token = stale_token
    before = last_used(session, session_id)
    commits: list[object] = []

    def count_commit(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count_commit)
    try:
        result = run(
            token,
            conversations.send_message,
            conversation_id=conversation_id,
            body="hello",
            client_message_id=uuid.uuid4().hex,
        )
    finally:
        event.remove(engine, "commit", count_commit)
    assert result.created and messages(session) == 1
    assert last_used(session, session_id) > before
    assert len(commits) == 1


def test_a_read_stores_the_sessions_slide(
    session: Session, stale_token, conversation_id: int
) -> None:
    session_id, token = stale_token
    before = last_used(session, session_id)
    listed = run(token, conversations.list_conversations)
    assert [summary.id for summary in listed] == [conversation_id]
    assert last_used(session, session_id) > before


def test_failed_work_stores_nothing(session: Session, stale_token) -> None:
    session_id, token = stale_token
    before = last_used(session, session_id)
    with pytest.raises(NotFound):
        run(
            token,
            conversations.send_message,
            conversation_id=987_654,
            body="nowhere",
            client_message_id=uuid.uuid4().hex,
        )
    assert messages(session) == 0
    assert last_used(session, session_id) == before


def test_a_dead_token_runs_no_work(session: Session, stale_token, conversation_id: int) -> None:
    session_id, token = stale_token
    sessions.revoke_session(
        session=session, user_id=session.get(AuthSession, session_id).user_id, session_id=session_id
    )
    for dead in (token, "not-a-real-token"):
        with pytest.raises(NotAuthenticated):
            run(
                dead,
                conversations.send_message,
                conversation_id=conversation_id,
                body="after revoking",
                client_message_id=uuid.uuid4().hex,
            )
    assert messages(session) == 0


def test_a_send_on_postgresql_waits_for_the_server_three_times(
    engine: Engine, session: Session, ada: User, conversation_id: int, tmp_path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's statements are calls in this process, not round trips")
    _, token = sessions.create_session(session=session, user_id=ada.id)  # nothing to slide

    with (
        Session(engine, expire_on_commit=False) as db_session,
        round_trips(db_session, tmp_path / "protocol.txt") as trips,
    ):
        _as_session_user(
            session=db_session,
            token=token,
            work=conversations.send_message,
            kwargs={
                "conversation_id": conversation_id,
                "body": "hello",
                "client_message_id": uuid.uuid4().hex,
            },
        )

    # BEGIN; the session check; then the conversation's lock, the send and the
    # commit together.
    assert len(trips) == 3, trips
    assert '"BEGIN"' in trips[0]
    assert "FROM auth_session" in trips[1]
    for part in ("FOR NO KEY UPDATE OF conversation", "INSERT INTO message", "COMMIT"):
        assert part in trips[2], (part, trips[2])
    assert messages(session) == 1
