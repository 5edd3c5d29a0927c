"""Password hashing: argon2id through passlib, at or above OWASP's minimum."""

from __future__ import annotations

from passlib.context import CryptContext

# OWASP's argon2id minimum, in the form that trades memory for passes: m=7 MiB,
# t=5, p=1, which OWASP rates equal to m=19 MiB, t=2. A hash takes about 30 %
# less CPU than with 19 MiB on the machine measured (bench/HISTORY.md), which
# is what a storm of sign-ins takes from message delivery. Changing these makes
# the context report old hashes as needing a rehash, done at the next sign-in.
password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=7 * 1024,
    argon2__time_cost=5,
    argon2__parallelism=1,
)

# Verified against when the email is unknown, so that failure costs the same
# time as a wrong password and does not reveal which emails have accounts.
_UNKNOWN_USER_HASH = password_context.hash("not a real password, never matches")


def hash_password(password: str) -> str:
    """Hash a password (slow on purpose: call it off the event loop).

    Args:
        password: The plain password.

    Returns:
        The argon2id hash string.
    """
    return password_context.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Check a password, doing the same work when there is no hash to check against.

    Args:
        password: The plain password offered.
        password_hash: The stored hash, or None for an unknown account.

    Returns:
        (matches, replacement hash if the stored one uses outdated parameters).
    """
    if password_hash is None:
        password_context.verify(password, _UNKNOWN_USER_HASH)
        return False, None
    return password_context.verify_and_update(password, password_hash)
