"""The database engine and sessions. SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from chat_app.config import settings

T = TypeVar("T")


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL keeps NORMAL durable across application crashes; only a power loss
    # can drop the last transactions.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_engine(database_url: str) -> Engine:
    """Create an engine for `database_url`, creating a SQLite file's folder if needed.

    Args:
        database_url: A SQLAlchemy URL (`sqlite:///…` or `postgresql+psycopg://…`).

    Returns:
        The engine.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@functools.cache
def get_engine() -> Engine:
    """Return the process-wide engine for the configured database.

    Returns:
        The engine for `settings.database_url`.
    """
    return build_engine(settings.database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """Open a session on the app's engine; objects stay usable after commit.

    Yields:
        A SQLModel session.
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


async def run_in_session(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Run `function(session=…, **kwargs)` in a worker thread, off the event loop.

    Args:
        function: A domain function taking a keyword-only `session`.
        **kwargs: Its other keyword arguments.

    Returns:
        What the function returned.
    """

    return await asyncio.to_thread(_call_in_session, function, kwargs)


PASSWORD_WORK_NICENESS = 10


def _yield_cpu_to_everything_else() -> None:
    """Lower this thread's CPU priority (Linux schedules threads one by one)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_WORK_NICENESS)


# Password hashing (argon2id: 19 MiB and tens of milliseconds of CPU each) has a
# lane of its own. A storm of sign-ins then queues here instead of taking every
# thread that message sends and page loads need, hashes one at a time (bounded
# memory), and at a lower priority: with several workers on a small machine the
# hashes would otherwise take every core from the event loops and the database.
_password_lane = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="password-work", initializer=_yield_cpu_to_everything_else
)


async def run_password_work(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Like `run_in_session`, in the one-thread lane kept for work that hashes passwords.

    Args:
        function: A domain function taking a keyword-only `session` (sign-in, sign-up, ...).
        **kwargs: Its other keyword arguments.

    Returns:
        What the function returned.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _password_lane, functools.partial(_call_in_session, function, kwargs)
    )


def _call_in_session(function: Callable[..., T], kwargs: dict[str, Any]) -> T:
    with session_scope() as session:
        return function(session=session, **kwargs)
