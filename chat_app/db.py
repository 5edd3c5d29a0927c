"""The database engine and sessions. SQLite runs in WAL mode with foreign keys on.

SQLite lets one connection write at a time. A writer that finds the database
locked sleeps in SQLite's busy handler (1, 2, 5, ... up to 100 ms a try), so
under load the database threads ended up asleep while nobody was writing: in
the benchmark at 200 sends/s, `send_message` went from about 1 ms to a p99 of
240-330 ms and a max of 1.3 s. Within this process, writes to a SQLite file
therefore queue on a lock instead, which hands over the moment the writer
before commits; the busy handler remains for other processes (migrations,
tests) writing to the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import select
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql import ClauseElement
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


SQLITE_LOCK_TIMEOUT_SECONDS = 5.0

# pysqlite opens a transaction implicitly before INSERT, UPDATE, DELETE and
# REPLACE; a statement starting with WITH may write too (and then commits by itself).
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|BEGIN|WITH)\b", re.IGNORECASE)


class _WriterQueueConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take its database's in-process writer lock.

    The lock is taken by the statement that opens the write transaction and let
    go once it commits or rolls back.
    """

    writer_lock: threading.Lock  # one per database file, set by `_writer_queue_connection_for`
    holds_writer_lock = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # noqa: D102
        return super().cursor(factory or _WriterQueueCursor)

    def take_writer_lock(self) -> None:
        """Wait for this database's other writers in this process, as SQLite's busy timeout would."""
        if self.holds_writer_lock:
            return
        if not self.writer_lock.acquire(timeout=SQLITE_LOCK_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        self.holds_writer_lock = True

    def release_writer_lock_unless_writing(self) -> None:
        """Let the next writer in once this connection has no write transaction open."""
        if self.holds_writer_lock and not self.in_transaction:
            self.holds_writer_lock = False
            self.writer_lock.release()

    def commit(self) -> None:  # noqa: D102
        try:
            super().commit()
        finally:
            self.release_writer_lock_unless_writing()

    def rollback(self) -> None:  # noqa: D102
        try:
            super().rollback()
        finally:
            self.release_writer_lock_unless_writing()

    def close(self) -> None:  # noqa: D102
        try:
            super().close()
        finally:
            if self.holds_writer_lock:  # closed with a write transaction open: it is gone
                self.holds_writer_lock = False
                self.writer_lock.release()


class _WriterQueueCursor(sqlite3.Cursor):
    connection: _WriterQueueConnection

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # noqa: D102
        return self._in_turn(super().execute, sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # noqa: D102
        return self._in_turn(super().executemany, sql, seq_of_parameters)

    def _in_turn(
        self, run: Callable[[str, Any], sqlite3.Cursor], sql: str, arguments: Any
    ) -> sqlite3.Cursor:
        if not _WRITE_STATEMENT.match(sql):
            return run(sql, arguments)
        self.connection.take_writer_lock()
        try:
            return run(sql, arguments)
        finally:
            self.connection.release_writer_lock_unless_writing()


_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_queue_connection_for(database: str) -> type[_WriterQueueConnection]:
    """The connection class for a SQLite file: every engine on that file shares one lock."""
    key = os.path.realpath(database)
    with _writer_locks_guard:
        lock = _writer_locks.setdefault(key, threading.Lock())
    return type("WriterQueueConnection", (_WriterQueueConnection,), {"writer_lock": lock})


def build_engine(database_url: str) -> Engine:
    """Create an engine for `database_url`, creating a SQLite file's folder if needed.

    Args:
        database_url: A SQLAlchemy URL (`sqlite:///…` or `postgresql+psycopg://…`).

    Returns:
        The engine.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 5}
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            connect_args["factory"] = _writer_queue_connection_for(url.database)
        engine = create_engine(url, connect_args=connect_args)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine, "checkout", _replace_if_closed_by_the_server)
    return engine


def _replace_if_closed_by_the_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has closed, without asking it.

    A connection idle in the pool has nothing to read, unless the server ended
    it: a restart, `pg_terminate_backend` or an idle timeout sends an error and
    closes the socket, which makes it readable. SQLAlchemy's `pool_pre_ping`
    would ask with a `SELECT 1` on every checkout instead, one more round trip
    per transaction (on a loaded two-core machine about 1 ms each at 200 sends/s).

    Raises:
        DisconnectionError: The connection was closed; the pool connects afresh
            in its place (each closed one is caught at its own checkout).
    """
    poller = select.poll()
    try:
        poller.register(dbapi_connection.fileno(), select.POLLIN)
    except Exception as error:  # psycopg already found it broken and closed it
        raise DisconnectionError("this pooled connection is closed") from error
    if poller.poll(0):
        raise DisconnectionError("the server closed this pooled connection")


def run_and_commit_in_one_trip(
    session: Session, statements: Sequence[tuple[ClauseElement, dict[str, Any]]]
) -> list[list[tuple]]:
    """PostgreSQL: run `statements` in order in the session's transaction, then commit it,
    in one round trip to the server (psycopg's pipeline mode).

    Each statement still runs on its own, in order, with the snapshot it would take
    if sent alone; only the waits between them go. So none of them may need
    another's result as a parameter. Under load every round trip waits for the
    server's process and then for this thread's turn at the GIL (bench/HISTORY.md).
    SQLAlchemy's result objects cannot read a pipeline's results, so the
    statements run on the driver's own cursors (no ORM objects, no type processing
    beyond psycopg's own). The pipeline polls the socket before each message it
    sends; sending the statements as one simple query instead, with their values
    bound as literals, polls once, but the server then parses and plans them on
    every send, where psycopg prepares a statement it keeps running: the send alone
    was slower that way (bench/HISTORY.md).

    Args:
        session: A session on PostgreSQL, best with its transaction open (if it is
            not, psycopg's `BEGIN` is one more wait before the trip).
        statements: Core statements with their parameters.

    Returns:
        Each statement's rows, as tuples.

    Raises:
        psycopg.Error: The first statement that failed (the session must roll back).
    """
    connection = session.connection()
    driver_connection = connection.connection.driver_connection
    prepared = []
    for statement, params in statements:
        sql, compiled = _compiled(statement, connection.dialect)
        prepared.append((sql, compiled.construct_params(params)))
    cursors = [driver_connection.cursor() for _ in prepared]
    try:
        with driver_connection.pipeline():
            for cursor, (sql, params) in zip(cursors, prepared, strict=True):
                cursor.execute(sql, params)
            # A statement, not `commit()`: psycopg's commit in a pipeline waits for
            # a sync of its own, one more round trip.
            driver_connection.execute("COMMIT")
        rows = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
    session.commit()  # the server has committed: this only closes SQLAlchemy's transaction
    return rows


@functools.cache
def _compiled(statement: ClauseElement, dialect: Any) -> tuple[str, Any]:
    compiled = statement.compile(dialect=dialect)
    return compiled.string, compiled


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


# Password hashing (argon2id: 7 MiB and tens of milliseconds of CPU each) has a
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
