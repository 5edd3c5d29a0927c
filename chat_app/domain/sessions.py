"""Sessions: 256-bit bearer tokens of which only the SHA-256 is stored.

A session lives 7 days and slides: used more than a day after it was last
extended, its expiry moves to 7 days from that use.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import Session, select

from chat_app.clock import utcnow
from chat_app.config import settings
from chat_app.domain import accounts
from chat_app.domain.errors import NotAuthenticated, NotFound
from chat_app.models import AuthSession, SignInTicket, User

_INSERT_SESSION = insert(AuthSession).returning(AuthSession.id)

# Writing last_used_at on every websocket event would turn reads into writes.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Authenticated:
    """A valid session and its user."""

    auth_session: AuthSession
    user: User


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """Return a fresh random 256-bit token, URL-safe."""
    return secrets.token_urlsafe(32)


def create_session(
    *,
    session: Session,
    user_id: int,
    user_agent: str = "",
    ip_address: str = "",
    now: datetime | None = None,
) -> tuple[AuthSession, str]:
    """Start a session for a user.

    Returns:
        The stored session and the raw token, which is never stored.
    """
    now = now or utcnow()
    token = new_token()
    auth_session = AuthSession(
        user_id=user_id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + settings.session_ttl,
        last_used_at=now,
        user_agent=(user_agent or "")[:512],
        ip_address=(ip_address or "")[:64],
    )
    # A plain INSERT: the unit of work would cost a sign-in more CPU than its query.
    auth_session.id = (
        session.connection()
        .execute(_INSERT_SESSION, auth_session.model_dump(exclude={"id"}))
        .scalar_one()
    )
    session.commit()
    return auth_session, token


def sign_in_and_create_session(
    *, session: Session, email: str, password: str, ip_address: str, user_agent: str = ""
) -> tuple[User, AuthSession, str]:
    """Check credentials and start a session. Hashes: call off the event loop.

    One transaction, unless the sign-in itself had something to commit first (a
    rehash, forgotten failures). The session's INSERT is the transaction's first
    write and comes right before its commit, so a SQLite database is locked for
    writing only for those two statements, not while the password is hashed.

    Args:
        session: The database session.
        email: Email address, any case.
        password: The password offered.
        ip_address: Where the attempt came from.
        user_agent: The client's User-Agent, shown in the list of sessions.

    Returns:
        The user, the new session and its raw token.

    Raises:
        InvalidInput: If the email is not an email address.
        Throttled: After too many failures for this email or this IP address.
        NotAuthenticated: For a wrong email or password.
    """
    user = accounts.sign_in(session=session, email=email, password=password, ip_address=ip_address)
    auth_session, token = create_session(
        session=session, user_id=user.id, user_agent=user_agent, ip_address=ip_address
    )
    return user, auth_session, token


# Built once: every API call and socket event authenticates.
_SESSION_BY_TOKEN_HASH = (
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)
# The same session as plain columns: loading the two ORM objects took about three
# quarters of an API call's authentication time, for callers that need only the id.
_SESSION_COLUMNS_BY_TOKEN_HASH = (
    select(AuthSession.id, AuthSession.user_id, AuthSession.expires_at, AuthSession.last_used_at)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)
_DELETE_SESSION = delete(AuthSession).where(AuthSession.id == bindparam("session_id"))


def _slide(*, expires_at: datetime, last_used_at: datetime, now: datetime) -> dict[str, datetime]:
    """The columns a use at `now` moves on (none most of the time): expiry and last use."""
    changes = {}
    extended_at = expires_at - settings.session_ttl
    if now - extended_at >= settings.session_refresh_after:
        changes["expires_at"] = now + settings.session_ttl
    if now - last_used_at >= _LAST_USED_RESOLUTION:
        changes["last_used_at"] = now
    return changes


def authenticate(
    *, session: Session, token: str | None, now: datetime | None = None, commit: bool = True
) -> Authenticated | None:
    """Find the live session for a raw token, sliding its expiry when due.

    Args:
        session: The database session.
        token: The raw token from a cookie or an Authorization header.
        now: The current time (tests pass their own).
        commit: False to leave the slide (expiry, last use) to the caller's own
            commit, for a caller that writes next anyway: one commit instead of two.

    Returns:
        The session and its user, or None if the token is unknown, revoked or expired.
    """
    if not token:
        return None
    now = now or utcnow()
    row = session.exec(_SESSION_BY_TOKEN_HASH, params={"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    auth_session, user = row
    if auth_session.expires_at <= now:
        session.delete(auth_session)
        session.commit()
        return None
    changes = _slide(
        expires_at=auth_session.expires_at, last_used_at=auth_session.last_used_at, now=now
    )
    if changes:
        for column, value in changes.items():
            setattr(auth_session, column, value)
        session.add(auth_session)
        if commit:
            session.commit()
    return Authenticated(auth_session=auth_session, user=user)


def authenticated_user_id(
    *, session: Session, token: str | None, now: datetime | None = None, commit: bool = True
) -> int | None:
    """Like `authenticate`, for a caller that needs only the user's id (every API call).

    The same checks and the same slide, past the ORM layer.

    Returns:
        The session's user id, or None if the token is unknown, revoked or expired.
    """
    if not token:
        return None
    now = now or utcnow()
    connection = session.connection()
    row = connection.execute(
        _SESSION_COLUMNS_BY_TOKEN_HASH, {"token_hash": hash_token(token)}
    ).first()
    if row is None:
        return None
    session_id, user_id, expires_at, last_used_at = row
    if expires_at <= now:
        connection.execute(_DELETE_SESSION, {"session_id": session_id})
        session.commit()
        return None
    changes = _slide(expires_at=expires_at, last_used_at=last_used_at, now=now)
    if changes:
        connection.execute(
            update(AuthSession).where(AuthSession.id == session_id).values(**changes)
        )
        if commit:
            session.commit()
        else:
            session.info[_SLIDE_UNCOMMITTED] = True
    return user_id


_SLIDE_UNCOMMITTED = "chat_app.session_slide_uncommitted"


def slide_uncommitted(session: Session) -> bool:
    """Whether `authenticated_user_id(commit=False)` wrote a slide in this session.

    It stays set once the slide is committed: a session is one request's.

    Work that could commit before it knows whether it fails (a send on
    PostgreSQL, `conversations.send_message`) checks this first, so that a
    failed request commits nothing, not even the session's last use.
    """
    return session.info.get(_SLIDE_UNCOMMITTED, False)


def authenticate_session_id(
    *, session: Session, session_id: int, now: datetime | None = None
) -> Authenticated | None:
    """Like `authenticate`, for a session known by id (a tab bound to it earlier).

    Returns:
        The session and its user, or None if it was revoked or has expired.
    """
    now = now or utcnow()
    row = session.exec(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == session_id, AuthSession.expires_at > now)
    ).first()
    return Authenticated(auth_session=row[0], user=row[1]) if row else None


def users_with_sessions_expired_between(
    *, session: Session, start: datetime, end: datetime
) -> list[int]:
    """Users with a session whose expiry fell in (start, end] (their open tabs must sign out)."""
    return list(
        session.exec(
            select(AuthSession.user_id)
            .where(AuthSession.expires_at > start, AuthSession.expires_at <= end)
            .distinct()
        )
    )


def list_sessions(
    *, session: Session, user_id: int, now: datetime | None = None
) -> list[AuthSession]:
    """Return a user's unexpired sessions, most recently used first."""
    now = now or utcnow()
    return list(
        session.exec(
            select(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.expires_at > now)
            .order_by(AuthSession.last_used_at.desc(), AuthSession.id.desc())
        )
    )


def revoke_session(*, session: Session, user_id: int, session_id: int) -> int:
    """Revoke one of the user's own sessions.

    Returns:
        The revoked session's id.

    Raises:
        NotFound: If the user has no session with that id.
    """
    auth_session = session.get(AuthSession, session_id)
    if auth_session is None or auth_session.user_id != user_id:
        raise NotFound("Session not found", code="SESSION_NOT_FOUND")
    session.delete(auth_session)
    session.commit()
    return session_id


def revoke_session_if_present(*, session: Session, user_id: int, session_id: int) -> bool:
    """Revoke one of the user's sessions if it still exists (signing out twice is fine).

    Returns:
        Whether a session was revoked.
    """
    try:
        revoke_session(session=session, user_id=user_id, session_id=session_id)
    except NotFound:
        return False
    return True


def revoke_other_sessions(
    *, session: Session, user_id: int, keep_session_id: int | None
) -> list[int]:
    """Revoke all of a user's sessions except one (or all, with None).

    Returns:
        The ids of the revoked sessions.
    """
    query = select(AuthSession.id).where(AuthSession.user_id == user_id)
    if keep_session_id is not None:
        query = query.where(AuthSession.id != keep_session_id)
    revoked = list(session.exec(query))
    if revoked:
        session.exec(delete(AuthSession).where(AuthSession.id.in_(revoked)))
        session.commit()
    return revoked


def revoke_token(*, session: Session, token: str | None) -> AuthSession | None:
    """Revoke the session a raw token belongs to, if any (signing out).

    Returns:
        The revoked session, or None if the token matched nothing.
    """
    if not token:
        return None
    auth_session = session.exec(
        select(AuthSession).where(AuthSession.token_hash == hash_token(token))
    ).first()
    if auth_session is not None:
        session.delete(auth_session)
        session.commit()
    return auth_session


def issue_sign_in_ticket(*, session: Session, user_id: int) -> str:
    """Issue a single-use ticket that `redeem_sign_in_ticket` turns into a session.

    Returns:
        The raw ticket (only its hash is stored).
    """
    now = utcnow()
    session.exec(delete(SignInTicket).where(SignInTicket.expires_at <= now))
    ticket = new_token()
    session.add(
        SignInTicket(
            ticket_hash=hash_token(ticket),
            user_id=user_id,
            expires_at=now + settings.sign_in_ticket_ttl,
        )
    )
    session.commit()
    return ticket


def redeem_sign_in_ticket(
    *, session: Session, ticket: str, user_agent: str = "", ip_address: str = ""
) -> tuple[AuthSession, str]:
    """Spend a ticket once and start the session it stands for.

    Returns:
        The new session and its raw token.

    Raises:
        NotAuthenticated: If the ticket is unknown, spent or expired.
    """
    row = session.exec(
        select(SignInTicket).where(SignInTicket.ticket_hash == hash_token(ticket or ""))
    ).first()
    if row is None:
        raise NotAuthenticated("Sign-in link expired, please sign in again")
    # The rowcount makes the ticket single-use even when two requests race.
    spent = session.exec(delete(SignInTicket).where(SignInTicket.id == row.id))
    session.commit()
    if spent.rowcount != 1 or row.expires_at <= utcnow():
        raise NotAuthenticated("Sign-in link expired, please sign in again")
    return create_session(
        session=session, user_id=row.user_id, user_agent=user_agent, ip_address=ip_address
    )
