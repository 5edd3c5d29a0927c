"""The engines: SQLite's writers queue in the process; PostgreSQL's pool skips closed connections.

SQLite writers in one process queue on a lock instead of SQLite's sleeping busy
handler. PostgreSQL's pool hands out no connection the server has closed, and
`run_and_commit_in_one_trip` sends statements and their commit in one round trip.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, bindparam, column, create_engine, insert, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

import chat_app.db
from chat_app.db import build_engine, run_and_commit_in_one_trip
from tests.conftest import POSTGRES_URL
from tests.support.databases import round_trips, temporary_postgres_database


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield engine
    engine.dispose()


def _no_busy_wait(connection) -> None:
    """Make SQLite itself fail at once on a locked database, instead of sleeping and retrying."""
    connection.execute(text("PRAGMA busy_timeout=0"))


def _notes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT body FROM note ORDER BY id")).scalars())


def test_a_second_writer_waits_for_the_first_to_commit(engine: Engine) -> None:
    first = engine.connect()
    first.begin()
    first.execute(text("INSERT INTO note (body) VALUES ('first')"))

    written = threading.Event()
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with engine.begin() as connection:
                _no_busy_wait(connection)
                connection.execute(text("INSERT INTO note (body) VALUES ('second')"))
            written.set()
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    writer = threading.Thread(target=second_writer)
    writer.start()
    # Without the queue SQLite would refuse the second writer at once
    # ("database is locked", busy timeout 0); with it, the writer waits.
    assert not written.wait(0.3)
    assert not errors
    first.commit()
    first.close()
    writer.join(10)
    assert not errors, errors
    assert written.is_set()
    assert _notes(engine) == ["first", "second"]


def test_reading_never_waits_for_a_writer(engine: Engine) -> None:
    with engine.connect() as writer:
        writer.begin()
        writer.execute(text("INSERT INTO note (body) VALUES ('uncommitted')"))
        with engine.connect() as reader:
            _no_busy_wait(reader)
            assert reader.execute(text("SELECT count(*) FROM note")).scalar() == 0
        writer.rollback()


@pytest.mark.parametrize(
    "end_the_write",
    [
        pytest.param(lambda connection: connection.rollback(), id="rolled back"),
        pytest.param(lambda connection: connection.close(), id="closed mid-transaction"),
    ],
)
def test_the_next_writer_gets_its_turn_however_the_write_ended(
    engine: Engine, end_the_write
) -> None:
    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO note (body) VALUES ('dropped')"))
    end_the_write(connection)
    connection.close()

    with engine.begin() as next_writer:
        _no_busy_wait(next_writer)
        next_writer.execute(text("INSERT INTO note (body) VALUES ('kept')"))
    assert _notes(engine) == ["kept"]


def test_a_failed_write_hands_the_turn_on(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO note (id, body) VALUES (1, 'one')"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO note (id, body) VALUES (1, 'again')"))

    with engine.begin() as connection:
        _no_busy_wait(connection)
        connection.execute(text("INSERT INTO note (body) VALUES ('two')"))
    assert _notes(engine) == ["one", "two"]


def test_a_statement_starting_with_with_writes_in_turn(engine: Engine) -> None:
    blocker = engine.connect()
    blocker.begin()
    blocker.execute(text("INSERT INTO note (body) VALUES ('first')"))

    done = threading.Event()

    def write_through_a_cte() -> None:
        with engine.connect() as connection:
            _no_busy_wait(connection)
            connection.execute(
                text(
                    "WITH new (body) AS (VALUES ('from a cte')) INSERT INTO note (body) SELECT body FROM new"
                )
            )
            connection.commit()
        done.set()

    writer = threading.Thread(target=write_through_a_cte)
    writer.start()
    assert not done.wait(0.3)
    blocker.commit()
    blocker.close()
    writer.join(10)
    assert done.is_set()
    assert _notes(engine) == ["first", "from a cte"]


def test_a_writer_gives_up_like_sqlite_when_the_turn_never_comes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_app.db, "SQLITE_LOCK_TIMEOUT_SECONDS", 0.2)
    blocker = engine.connect()
    blocker.begin()
    blocker.execute(text("INSERT INTO note (body) VALUES ('held')"))
    try:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            engine.begin() as connection,
        ):
            connection.execute(text("INSERT INTO note (body) VALUES ('never')"))
    finally:
        blocker.rollback()
        blocker.close()


def test_engines_on_one_file_share_the_queue(engine: Engine, tmp_path: Path) -> None:
    other = build_engine(f"sqlite:///{tmp_path / '.' / 'writers.db'}")
    try:
        with engine.connect() as first, other.connect() as second:
            first_raw = first.connection.dbapi_connection
            second_raw = second.connection.dbapi_connection
            assert isinstance(first_raw, sqlite3.Connection)
            assert first_raw.writer_lock is second_raw.writer_lock
    finally:
        other.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    with temporary_postgres_database(POSTGRES_URL) as database_url:
        engine = build_engine(database_url)
        yield engine
        engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _end_backend_as_a_restart_would(pid: int) -> None:
    """Terminate a PostgreSQL backend and wait until it is gone (its socket closed)."""
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            assert connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            ).scalar()
            for _ in range(500):
                alive = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
                if not alive:
                    return
                time.sleep(0.01)
        raise AssertionError(f"backend {pid} still running")
    finally:
        admin.dispose()


def test_a_pooled_postgresql_connection_stays_in_use_while_the_server_keeps_it(
    postgres_engine: Engine,
) -> None:
    assert _backend_pid(postgres_engine) == _backend_pid(postgres_engine)


def test_a_pooled_postgresql_connection_the_server_closed_is_replaced_before_use(
    postgres_engine: Engine,
) -> None:
    first = _backend_pid(postgres_engine)  # back in the pool now
    _end_backend_as_a_restart_would(first)

    second = _backend_pid(postgres_engine)  # no error: the closed one was not handed out

    assert second != first


_note = table("note", column("id"), column("body"))
_ADD_NOTE = insert(_note).values(body=bindparam("body")).returning(_note.c.id)


@pytest.fixture
def postgres_notes(postgres_engine: Engine) -> Engine:
    with postgres_engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)"))
    return postgres_engine


def _postgres_notes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT body FROM note ORDER BY id")).scalars())


def test_statements_and_their_commit_reach_postgresql_in_one_round_trip(
    postgres_notes: Engine, tmp_path: Path
) -> None:
    count_notes = select(text("count(*)")).select_from(_note)
    with Session(postgres_notes) as session:
        session.execute(text("SELECT 1"))  # the transaction is open, as after authenticating
        with round_trips(session, tmp_path / "trace.txt") as trips:
            rows = run_and_commit_in_one_trip(
                session,
                [(_ADD_NOTE, {"body": "one"}), (_ADD_NOTE, {"body": "two"}), (count_notes, {})],
            )

    assert rows == [[(1,)], [(2,)], [(2,)]]  # each statement saw the ones before it
    assert _postgres_notes(postgres_notes) == ["one", "two"]  # committed
    assert len(trips) == 1, trips  # the client sent all before it waited
    assert trips[0].count("INSERT INTO note") == 2 and "COMMIT" in trips[0]


def test_a_failing_statement_in_the_trip_commits_nothing(postgres_notes: Engine) -> None:
    with Session(postgres_notes) as session:
        session.execute(text("SELECT 1"))
        with pytest.raises(psycopg.errors.DivisionByZero):
            run_and_commit_in_one_trip(
                session, [(_ADD_NOTE, {"body": "one"}), (select(text("1 / 0")), {})]
            )
        session.rollback()
        # The session goes on as usual after its rollback.
        assert session.execute(text("SELECT count(*) FROM note")).scalar_one() == 0

    assert _postgres_notes(postgres_notes) == []


def test_values_in_the_trip_arrive_as_given(postgres_notes: Engine) -> None:
    tricky = 'O\'Brien said "hi"; DROP TABLE note; -- 100% \\ back\\slash\nnew line, ünïcode 👋'
    with Session(postgres_notes) as session:
        run_and_commit_in_one_trip(session, [(_ADD_NOTE, {"body": tricky})])

    assert _postgres_notes(postgres_notes) == [tricky]
