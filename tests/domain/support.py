"""Helpers shared by the domain test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event
from sqlmodel import Session

from chat_app.models import User


def make_user(session: Session, name: str, email: str | None = None) -> User:
    """Insert a user directly (no password hashing: fast, for non-account tests)."""
    now = datetime.now(UTC)
    user = User(
        email=email or f"{name.lower()}@example.com",
        name=name,
        password_hash="not-a-hash",
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect every SQL statement sent to the database inside the block."""
    statements: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


class TickingClock:
    """A fake `utcnow` that advances one second per call (deterministic ordering)."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
