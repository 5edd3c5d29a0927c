"""Session service: hashed bearer tokens, expiry, sliding refresh, revocation, tickets."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text, update
from sqlmodel import Session, func, select

from chat_app.clock import utcnow
from chat_app.domain import accounts, sessions
from chat_app.domain.errors import NotAuthenticated, NotFound, Throttled
from chat_app.models import AuthSession, SignInTicket, User
from tests.domain.support import count_statements, make_user

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def grace(session: Session) -> User:
    return make_user(session, "Grace")


def all_cells(session: Session, table: str) -> list[str]:
    rows = session.connection().execute(text(f'SELECT * FROM "{table}"')).all()
    return [str(cell) for row in rows for cell in row]


def stored_session(session: Session, session_id: int) -> AuthSession | None:
    session.expire_all()
    return session.get(AuthSession, session_id)


def session_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(AuthSession)).one()


# --- tokens ----------------------------------------------------------------------


def test_only_the_sha256_of_the_token_is_stored(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(
        session=session, user_id=ada.id, user_agent="Firefox", ip_address="10.0.0.1"
    )

    assert len(token) >= 43  # 256 bits, URL-safe base64
    expected = hashlib.sha256(token.encode()).hexdigest()
    assert stored_session(session, auth_session.id).token_hash == expected
    cells = all_cells(session, "auth_session")
    assert expected in cells
    assert not any(token in cell for cell in cells)
    assert "Firefox" in cells and "10.0.0.1" in cells


def test_tokens_are_unique_per_session(session: Session, ada: User) -> None:
    tokens = {sessions.create_session(session=session, user_id=ada.id)[1] for _ in range(5)}
    assert len(tokens) == 5


def test_new_session_lasts_seven_days(session: Session, ada: User) -> None:
    auth_session, _ = sessions.create_session(session=session, user_id=ada.id, now=T0)

    stored = stored_session(session, auth_session.id)
    assert stored.created_at == T0
    assert stored.last_used_at == T0
    assert stored.expires_at == T0 + timedelta(days=7)
    assert stored.expires_at.tzinfo is not None


def test_user_agent_and_ip_are_truncated(session: Session, ada: User) -> None:
    auth_session, _ = sessions.create_session(
        session=session, user_id=ada.id, user_agent="u" * 600, ip_address="1" * 100
    )

    stored = stored_session(session, auth_session.id)
    assert stored.user_agent == "u" * 512
    assert stored.ip_address == "1" * 64


# --- signing in with a password ---------------------------------------------------

PASSWORD = "correct horse battery"


def test_signing_in_starts_a_session_that_authenticates(session: Session) -> None:
    ada = accounts.sign_up(session=session, name="Ada", email="ada@example.com", password=PASSWORD)

    user, auth_session, token = sessions.sign_in_and_create_session(
        session=session,
        email=" ADA@example.com",
        password=PASSWORD,
        ip_address="10.0.0.1",
        user_agent="Firefox",
    )

    assert user.id == ada.id
    stored = stored_session(session, auth_session.id)
    assert (stored.user_id, stored.user_agent, stored.ip_address) == (ada.id, "Firefox", "10.0.0.1")
    assert sessions.authenticate(session=session, token=token).auth_session.id == auth_session.id


@pytest.mark.parametrize("password", ["wrong password", ""])
def test_a_wrong_password_starts_no_session(session: Session, password: str) -> None:
    accounts.sign_up(session=session, name="Ada", email="ada@example.com", password=PASSWORD)

    with pytest.raises(NotAuthenticated):
        sessions.sign_in_and_create_session(
            session=session, email="ada@example.com", password=password, ip_address="10.0.0.1"
        )

    session.rollback()
    assert session_count(session) == 0


def test_a_throttled_sign_in_starts_no_session(session: Session) -> None:
    accounts.sign_up(session=session, name="Ada", email="ada@example.com", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(NotAuthenticated):
            sessions.sign_in_and_create_session(
                session=session, email="ada@example.com", password="nope", ip_address="10.0.0.1"
            )

    with pytest.raises(Throttled):
        sessions.sign_in_and_create_session(
            session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.0.2"
        )

    session.rollback()
    assert session_count(session) == 0


def test_signing_in_is_three_statements_and_one_commit(engine: Engine, session: Session) -> None:
    """A storm of sign-ins shares the CPU with message delivery: each does the least it can."""
    accounts.sign_up(session=session, name="Ada", email="ada@example.com", password=PASSWORD)
    commits: list[object] = []

    def count_commit(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count_commit)
    try:
        with count_statements(engine) as statements:
            sessions.sign_in_and_create_session(
                session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.0.1"
            )
    finally:
        event.remove(engine, "commit", count_commit)

    # The failures on record, the user, the new session.
    assert len(statements) == 3, statements
    assert len(commits) == 1


# --- authenticate ----------------------------------------------------------------


def test_authenticate_returns_the_session_and_its_user(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)

    found = sessions.authenticate(session=session, token=token, now=T0 + timedelta(minutes=5))

    assert found is not None
    assert found.auth_session.id == auth_session.id
    assert found.user.id == ada.id
    assert found.user.email == "ada@example.com"


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_authenticate_unknown_or_empty_token(session: Session, ada: User, token) -> None:  # noqa: ANN001
    sessions.create_session(session=session, user_id=ada.id)

    assert sessions.authenticate(session=session, token=token) is None


def test_authenticate_rejects_the_hash_used_as_a_token(session: Session, ada: User) -> None:
    auth_session, _ = sessions.create_session(session=session, user_id=ada.id)

    assert sessions.authenticate(session=session, token=auth_session.token_hash) is None


def test_expired_session_is_rejected_and_deleted(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    just_before = T0 + timedelta(days=7) - timedelta(seconds=1)
    at_expiry = T0 + timedelta(days=7)

    # A twin session is still valid a second before expiry (using it slides it,
    # so the session under test is left untouched until its expiry).
    other, other_token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    assert sessions.authenticate(session=session, token=other_token, now=just_before) is not None

    assert sessions.authenticate(session=session, token=token, now=at_expiry) is None
    assert stored_session(session, auth_session.id) is None
    assert stored_session(session, other.id) is not None


def test_authenticate_session_id_follows_revocation_and_expiry(session: Session, ada: User) -> None:
    auth_session, _ = sessions.create_session(session=session, user_id=ada.id, now=T0)

    found = sessions.authenticate_session_id(session=session, session_id=auth_session.id, now=T0)
    assert found is not None and found.user.id == ada.id
    assert (
        sessions.authenticate_session_id(
            session=session, session_id=auth_session.id, now=T0 + timedelta(days=8)
        )
        is None
    )
    assert sessions.revoke_session_if_present(
        session=session, user_id=ada.id, session_id=auth_session.id
    )
    assert (
        sessions.authenticate_session_id(session=session, session_id=auth_session.id, now=T0)
        is None
    )
    # Signing out twice is not an error.
    assert not sessions.revoke_session_if_present(
        session=session, user_id=ada.id, session_id=auth_session.id
    )


def test_users_with_sessions_expired_between(session: Session, ada: User) -> None:
    grace = make_user(session, "Grace")
    sessions.create_session(session=session, user_id=ada.id, now=T0)
    sessions.create_session(session=session, user_id=grace.id, now=T0 + timedelta(hours=1))
    expiry = T0 + timedelta(days=7)

    assert sessions.users_with_sessions_expired_between(
        session=session, start=expiry - timedelta(seconds=1), end=expiry
    ) == [ada.id]
    assert (
        sessions.users_with_sessions_expired_between(
            session=session, start=expiry, end=expiry + timedelta(minutes=30)
        )
        == []
    )
    assert sorted(
        sessions.users_with_sessions_expired_between(
            session=session, start=expiry - timedelta(seconds=1), end=expiry + timedelta(hours=1)
        )
    ) == sorted([ada.id, grace.id])


# --- sliding refresh -------------------------------------------------------------


def test_use_after_two_days_slides_expiry_to_seven_days_from_now(
    session: Session, ada: User
) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    later = T0 + timedelta(days=2)

    found = sessions.authenticate(session=session, token=token, now=later)

    assert found is not None
    assert found.auth_session.expires_at == later + timedelta(days=7)
    stored = stored_session(session, auth_session.id)
    assert stored.expires_at == later + timedelta(days=7)
    assert stored.last_used_at == later
    # The session now outlives its original expiry.
    assert (
        sessions.authenticate(session=session, token=token, now=T0 + timedelta(days=8)) is not None
    )


def test_use_after_one_hour_does_not_slide_expiry(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    later = T0 + timedelta(hours=1)

    assert sessions.authenticate(session=session, token=token, now=later) is not None

    stored = stored_session(session, auth_session.id)
    assert stored.expires_at == T0 + timedelta(days=7)
    assert stored.last_used_at == later


def test_refresh_is_measured_from_the_last_extension(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    first = T0 + timedelta(days=2)
    sessions.authenticate(session=session, token=token, now=first)

    sessions.authenticate(session=session, token=token, now=first + timedelta(hours=20))
    assert stored_session(session, auth_session.id).expires_at == first + timedelta(days=7)

    second = first + timedelta(days=1, minutes=1)
    sessions.authenticate(session=session, token=token, now=second)
    assert stored_session(session, auth_session.id).expires_at == second + timedelta(days=7)


def test_last_used_is_written_at_most_once_a_minute(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)

    sessions.authenticate(session=session, token=token, now=T0 + timedelta(seconds=30))
    assert stored_session(session, auth_session.id).last_used_at == T0

    sessions.authenticate(session=session, token=token, now=T0 + timedelta(seconds=90))
    assert stored_session(session, auth_session.id).last_used_at == T0 + timedelta(seconds=90)


# --- authenticated_user_id (every API call) -----------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_user_id_of_an_unknown_or_empty_token_is_none(session: Session, ada: User, token) -> None:  # noqa: ANN001
    sessions.create_session(session=session, user_id=ada.id)

    assert sessions.authenticated_user_id(session=session, token=token) is None


def test_user_id_of_a_live_session(session: Session, ada: User, grace: User) -> None:
    _, token = sessions.create_session(session=session, user_id=grace.id, now=T0)
    auth_session, _ = sessions.create_session(session=session, user_id=ada.id, now=T0)

    assert sessions.authenticated_user_id(session=session, token=token, now=T0) == grace.id
    assert sessions.authenticated_user_id(session=session, token=auth_session.token_hash) is None


def test_user_id_of_an_expired_session_is_none_and_the_session_is_deleted(
    session: Session, ada: User
) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)

    assert (
        sessions.authenticated_user_id(session=session, token=token, now=T0 + timedelta(days=7))
        is None
    )
    assert stored_session(session, auth_session.id) is None


def test_user_id_of_a_revoked_session_is_none(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    sessions.revoke_session_if_present(session=session, user_id=ada.id, session_id=auth_session.id)

    assert sessions.authenticated_user_id(session=session, token=token, now=T0) is None


@pytest.mark.parametrize(
    "used_after",
    [
        timedelta(seconds=30),
        timedelta(seconds=90),
        timedelta(hours=1),
        timedelta(days=1, minutes=1),
        timedelta(days=2),
        timedelta(days=6, hours=23),
    ],
)
def test_user_id_slides_the_session_as_authenticate_does(
    session: Session, ada: User, used_after: timedelta
) -> None:
    by_objects, objects_token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    by_columns, columns_token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    later = T0 + used_after

    sessions.authenticate(session=session, token=objects_token, now=later)
    assert sessions.authenticated_user_id(session=session, token=columns_token, now=later) == ada.id

    expected = stored_session(session, by_objects.id)
    stored = stored_session(session, by_columns.id)
    assert (stored.expires_at, stored.last_used_at) == (expected.expires_at, expected.last_used_at)
    assert stored.last_used_at == (T0 if used_after < timedelta(minutes=1) else later)


def test_user_id_without_commit_leaves_the_slide_to_the_callers_commit(
    session: Session, ada: User
) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    later = T0 + timedelta(days=2)

    assert (
        sessions.authenticated_user_id(session=session, token=token, now=later, commit=False)
        == ada.id
    )
    session.rollback()
    assert stored_session(session, auth_session.id).expires_at == T0 + timedelta(days=7)

    sessions.authenticated_user_id(session=session, token=token, now=later, commit=False)
    session.commit()
    assert stored_session(session, auth_session.id).expires_at == later + timedelta(days=7)


def test_user_id_is_one_statement_when_nothing_slides(
    engine: Engine, session: Session, ada: User
) -> None:
    """Every API call authenticates: most of them read one row and write nothing."""
    _, token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    session.commit()

    with count_statements(engine) as statements:
        sessions.authenticated_user_id(session=session, token=token, now=T0 + timedelta(seconds=5))
    assert len(statements) == 1, statements

    with count_statements(engine) as statements:
        sessions.authenticated_user_id(session=session, token=token, now=T0 + timedelta(days=2))
    assert len(statements) == 2, statements
    assert statements[1].lstrip().upper().startswith("UPDATE")


# --- listing and revoking ----------------------------------------------------------


def test_list_sessions_own_unexpired_most_recently_used_first(
    session: Session, ada: User, grace: User
) -> None:
    first, first_token = sessions.create_session(session=session, user_id=ada.id, now=T0)
    second, _ = sessions.create_session(
        session=session, user_id=ada.id, now=T0 + timedelta(minutes=1)
    )
    sessions.create_session(session=session, user_id=ada.id, now=T0 - timedelta(days=8))
    sessions.create_session(session=session, user_id=grace.id, now=T0)
    now = T0 + timedelta(minutes=5)

    assert [s.id for s in sessions.list_sessions(session=session, user_id=ada.id, now=now)] == [
        second.id,
        first.id,
    ]

    sessions.authenticate(session=session, token=first_token, now=now)
    listed = sessions.list_sessions(session=session, user_id=ada.id, now=now)
    assert [s.id for s in listed] == [first.id, second.id]
    assert all(s.user_id == ada.id for s in listed)


def test_revoke_session_ends_it(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id)

    assert (
        sessions.revoke_session(session=session, user_id=ada.id, session_id=auth_session.id)
        == auth_session.id
    )

    assert sessions.authenticate(session=session, token=token) is None
    assert stored_session(session, auth_session.id) is None


def test_revoke_another_users_session_is_not_found(
    session: Session, ada: User, grace: User
) -> None:
    graces, graces_token = sessions.create_session(session=session, user_id=grace.id)

    with pytest.raises(NotFound) as theirs:
        sessions.revoke_session(session=session, user_id=ada.id, session_id=graces.id)
    with pytest.raises(NotFound) as missing:
        sessions.revoke_session(session=session, user_id=ada.id, session_id=graces.id + 1000)

    assert (theirs.value.code, theirs.value.message) == (missing.value.code, missing.value.message)
    assert sessions.authenticate(session=session, token=graces_token) is not None


def test_revoke_other_sessions_keeps_the_given_one(
    session: Session, ada: User, grace: User
) -> None:
    keep, keep_token = sessions.create_session(session=session, user_id=ada.id)
    others = [sessions.create_session(session=session, user_id=ada.id) for _ in range(3)]
    _, graces_token = sessions.create_session(session=session, user_id=grace.id)

    revoked = sessions.revoke_other_sessions(
        session=session, user_id=ada.id, keep_session_id=keep.id
    )

    assert sorted(revoked) == sorted(s.id for s, _ in others)
    assert sessions.authenticate(session=session, token=keep_token) is not None
    assert all(sessions.authenticate(session=session, token=t) is None for _, t in others)
    assert sessions.authenticate(session=session, token=graces_token) is not None


def test_revoke_other_sessions_with_none_revokes_all(
    session: Session, ada: User, grace: User
) -> None:
    mine = [sessions.create_session(session=session, user_id=ada.id) for _ in range(2)]
    sessions.create_session(session=session, user_id=grace.id)

    revoked = sessions.revoke_other_sessions(session=session, user_id=ada.id, keep_session_id=None)

    assert sorted(revoked) == sorted(s.id for s, _ in mine)
    assert session_count(session) == 1
    assert (
        sessions.revoke_other_sessions(session=session, user_id=ada.id, keep_session_id=None) == []
    )


def test_revoke_token_signs_out(session: Session, ada: User) -> None:
    auth_session, token = sessions.create_session(session=session, user_id=ada.id)

    assert sessions.revoke_token(session=session, token=token).id == auth_session.id
    assert sessions.authenticate(session=session, token=token) is None
    assert sessions.revoke_token(session=session, token=token) is None
    assert sessions.revoke_token(session=session, token="") is None


# --- sign-in tickets ---------------------------------------------------------------


def test_ticket_redeems_into_a_working_session(session: Session, ada: User) -> None:
    ticket = sessions.issue_sign_in_ticket(session=session, user_id=ada.id)

    auth_session, token = sessions.redeem_sign_in_ticket(
        session=session, ticket=ticket, user_agent="Firefox", ip_address="10.0.0.1"
    )

    found = sessions.authenticate(session=session, token=token)
    assert found is not None
    assert found.user.id == ada.id
    assert found.auth_session.id == auth_session.id
    assert (auth_session.user_agent, auth_session.ip_address) == ("Firefox", "10.0.0.1")
    assert token != ticket


def test_ticket_is_stored_hashed(session: Session, ada: User) -> None:
    ticket = sessions.issue_sign_in_ticket(session=session, user_id=ada.id)

    cells = all_cells(session, "sign_in_ticket")
    assert hashlib.sha256(ticket.encode()).hexdigest() in cells
    assert not any(ticket in cell for cell in cells)
    row = session.exec(select(SignInTicket)).one()
    now = utcnow()
    assert now < row.expires_at <= now + timedelta(seconds=30)


def test_ticket_redeems_only_once(session: Session, ada: User) -> None:
    ticket = sessions.issue_sign_in_ticket(session=session, user_id=ada.id)
    sessions.redeem_sign_in_ticket(session=session, ticket=ticket)

    with pytest.raises(NotAuthenticated):
        sessions.redeem_sign_in_ticket(session=session, ticket=ticket)

    assert session_count(session) == 1


@pytest.mark.parametrize("ticket", ["", "made-up-ticket"])
def test_unknown_ticket_fails(session: Session, ada: User, ticket: str) -> None:
    sessions.issue_sign_in_ticket(session=session, user_id=ada.id)

    with pytest.raises(NotAuthenticated):
        sessions.redeem_sign_in_ticket(session=session, ticket=ticket)
    assert session_count(session) == 0


def test_expired_ticket_fails_and_is_spent(session: Session, ada: User) -> None:
    ticket = sessions.issue_sign_in_ticket(session=session, user_id=ada.id)
    session.exec(update(SignInTicket).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()

    with pytest.raises(NotAuthenticated):
        sessions.redeem_sign_in_ticket(session=session, ticket=ticket)

    assert session_count(session) == 0
    assert session.exec(select(func.count()).select_from(SignInTicket)).one() == 0


def test_issuing_a_ticket_prunes_expired_ones(session: Session, ada: User) -> None:
    sessions.issue_sign_in_ticket(session=session, user_id=ada.id)
    session.exec(update(SignInTicket).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()

    fresh = sessions.issue_sign_in_ticket(session=session, user_id=ada.id)

    rows = session.exec(select(SignInTicket)).all()
    assert [row.ticket_hash for row in rows] == [hashlib.sha256(fresh.encode()).hexdigest()]
