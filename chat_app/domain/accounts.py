"""Accounts: sign-up, sign-in with throttling, profile and password changes."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from chat_app.clock import utcnow
from chat_app.config import settings
from chat_app.domain.errors import Conflict, InvalidInput, NotAuthenticated, Throttled
from chat_app.domain.passwords import hash_password, verify_password
from chat_app.models import SignInFailure, User

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
INVALID_CREDENTIALS = "Invalid email or password"

# Deliberately plain: one "@", a dot in the domain, no spaces. Deliverability
# is for a confirmation email to prove, not a regular expression.
_EMAIL_PATTERN = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+$")
# Whitespace is collapsed; any other control character is refused.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_email(email: str) -> str:
    """Validate an email address and return its stored form (trimmed, lower-cased).

    Args:
        email: The address as typed.

    Returns:
        The normalised address.

    Raises:
        InvalidInput: If it is empty, too long or not an address.
    """
    email = (email or "").strip().lower()
    if not email:
        raise InvalidInput("Enter your email address", code="INVALID_EMAIL", field="email")
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL_PATTERN.match(email):
        raise InvalidInput("Enter a valid email address", code="INVALID_EMAIL", field="email")
    return email


def validate_name(name: str) -> str:
    """Validate a display name and return it trimmed.

    Args:
        name: The name as typed.

    Returns:
        The trimmed name.

    Raises:
        InvalidInput: If it is empty or longer than 100 characters.
    """
    if _CONTROL_CHARACTERS.search(name or ""):
        raise InvalidInput(
            "A name can't contain control characters", code="INVALID_NAME", field="name"
        )
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("Enter your name", code="INVALID_NAME", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(
            f"Name must be at most {NAME_MAX_LENGTH} characters",
            code="NAME_TOO_LONG",
            field="name",
        )
    return name


def validate_password(password: str, *, field: str = "password") -> str:
    """Check a new password's length (8 to 128 characters).

    Args:
        password: The password.
        field: The form field to blame.

    Returns:
        The password, unchanged.

    Raises:
        InvalidInput: If it is too short or too long.
    """
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(
            f"Password must be at least {PASSWORD_MIN_LENGTH} characters",
            code="PASSWORD_TOO_SHORT",
            field=field,
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(
            f"Password must be at most {PASSWORD_MAX_LENGTH} characters",
            code="PASSWORD_TOO_LONG",
            field=field,
        )
    return password


_USER_BY_EMAIL = select(User).where(User.email == bindparam("email"))


def get_user_by_email(*, session: Session, email: str) -> User | None:
    """Return the user with this (already normalised) email, or None."""
    return session.exec(_USER_BY_EMAIL, params={"email": email}).first()


def sign_up(*, session: Session, name: str, email: str, password: str) -> User:
    """Create an account. Hashes the password: call off the event loop.

    Args:
        session: The database session.
        name: Display name.
        email: Email address, any case.
        password: 8 to 128 characters.

    Returns:
        The new user.

    Raises:
        InvalidInput: For a rejected field.
        Conflict: If the email already has an account.
    """
    name = validate_name(name)
    email = normalize_email(email)
    validate_password(password)
    if get_user_by_email(session=session, email=email) is not None:
        raise _email_taken()
    now = utcnow()
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:  # the same email signed up concurrently
        session.rollback()
        raise _email_taken() from error
    session.refresh(user)
    return user


def _email_taken() -> Conflict:
    return Conflict(
        "An account with this email already exists",
        code="USER_ALREADY_EXISTS",
        field="email",
    )


def _failures_query() -> Select:
    recent = SignInFailure.created_at > bindparam("since")
    by_email = SignInFailure.email == bindparam("email")
    # A NULL address (no client IP known) matches no row: it throttles nothing.
    by_ip = SignInFailure.ip_address == bindparam("ip_address")
    return select(
        func.count().filter(by_email & recent),
        func.min(SignInFailure.created_at).filter(by_email & recent),
        func.count().filter(by_ip & recent),
        func.min(SignInFailure.created_at).filter(by_ip & recent),
        func.count().filter(by_email),
    ).where(by_email | by_ip)


# Built once: every sign-in runs it, and a storm of sign-ins competes with message delivery.
_FAILURES = _failures_query()


def _failures_seen(
    *, session: Session, email: str, ip_address: str, now: datetime
) -> tuple[int | None, bool]:
    """One statement: seconds until this email and IP may try again, and any failure of the email.

    Returns:
        (seconds to wait, or None when neither is throttled; whether the email
        has failures on record, old ones included).
    """
    email_count, email_oldest, ip_count, ip_oldest, email_ever = session.exec(
        _FAILURES,
        params={
            "email": email,
            "ip_address": ip_address or None,
            "since": now - settings.throttle_window,
        },
    ).one()
    retry_after = 0
    for count, oldest in ((email_count, email_oldest), (ip_count, ip_oldest)):
        if count >= settings.throttle_max_failures:
            free_at = oldest + settings.throttle_window
            retry_after = max(retry_after, int((free_at - now).total_seconds()) + 1)
    return retry_after or None, email_ever > 0


def sign_in(*, session: Session, email: str, password: str, ip_address: str) -> User:
    """Check credentials, throttled per email and per IP. Hashes: call off the event loop.

    Unknown email and wrong password fail alike, after the same hashing work. A
    success commits only when it changed something (a rehash, forgotten
    failures); usually it changes nothing, and the caller's next write (the new
    session) shares its transaction.

    Args:
        session: The database session.
        email: Email address, any case.
        password: The password offered.
        ip_address: Where the attempt came from.

    Returns:
        The signed-in user.

    Raises:
        InvalidInput: If the email is not an email address.
        Throttled: After too many failures for this email or this IP address.
        NotAuthenticated: For a wrong email or password.
    """
    email = normalize_email(email)
    now = utcnow()
    retry_after, email_has_failures = _failures_seen(
        session=session, email=email, ip_address=ip_address, now=now
    )
    if retry_after is not None:
        raise Throttled(retry_after)
    user = get_user_by_email(session=session, email=email)
    matches, new_hash = verify_password(password or "", user.password_hash if user else None)
    if user is None or not matches:
        session.add(SignInFailure(email=email, ip_address=ip_address, created_at=now))
        session.exec(
            delete(SignInFailure).where(SignInFailure.created_at < now - settings.throttle_window)
        )
        session.commit()
        raise NotAuthenticated(INVALID_CREDENTIALS, code="INVALID_EMAIL_OR_PASSWORD")
    if new_hash is not None:
        user.password_hash = new_hash
        session.add(user)
    if email_has_failures:
        session.exec(delete(SignInFailure).where(SignInFailure.email == email))
    if session.dirty or session.new or email_has_failures:
        session.commit()
    return user


def rename(*, session: Session, user_id: int, name: str) -> User:
    """Change a user's display name.

    Raises:
        InvalidInput: If the name is rejected.
    """
    name = validate_name(name)
    user = session.get(User, user_id)
    if user is None:
        raise NotAuthenticated("Unauthorized")
    user.name = name
    user.updated_at = utcnow()
    session.add(user)
    session.commit()
    return user


def change_password(
    *, session: Session, user_id: int, current_password: str, new_password: str
) -> User:
    """Replace a password after checking the current one. Hashes: call off the event loop.

    Sessions are not touched here; callers revoke them as their API promises.

    Raises:
        InvalidInput: If the new password is rejected or the current one is wrong.
    """
    validate_password(new_password, field="new_password")
    user = session.get(User, user_id)
    if user is None:
        raise NotAuthenticated("Unauthorized")
    matches, _ = verify_password(current_password or "", user.password_hash)
    if not matches:
        raise InvalidInput(
            "Current password is incorrect", code="INVALID_PASSWORD", field="current_password"
        )
    user.password_hash = hash_password(new_password)
    user.updated_at = utcnow()
    session.add(user)
    session.commit()
    return user
