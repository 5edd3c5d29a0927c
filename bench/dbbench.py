"""Database-only figures: history paging on a huge conversation, and message commit time.

History: one conversation of `big` messages (1,000,000; 100,000 with --quick)
and one of 10,000, bulk-loaded (SQLite: executemany in batches; PostgreSQL:
COPY), then `chat_app.domain.conversations.list_messages(before=<an id in the
middle>)` timed as the app calls it (a fresh session per call), on SQLite and
PostgreSQL. Commit: `send_message` called sequentially, each timed from call to
return (validate, membership, insert, conversation update, commit, members).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from bench.load import summary_ms
from bench.servers import POSTGRES_URL
from chat_app.db import build_engine
from chat_app.domain import conversations
from chat_app.models import Conversation, ConversationMember, User
from tests.support.databases import temporary_postgres_database
from tests.support.server import migrate

BATCH = 50_000


def _seed_people(engine) -> tuple[int, int, int, int]:
    """Two users and two conversations between them; returns (alice, bob, big, small)."""
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        alice = User(email=f"a-{uuid.uuid4().hex[:8]}@example.com", name="Alice", password_hash="x", created_at=now, updated_at=now)
        bob = User(email=f"b-{uuid.uuid4().hex[:8]}@example.com", name="Bob", password_hash="x", created_at=now, updated_at=now)
        session.add_all([alice, bob])
        session.flush()
        big = Conversation(created_by_id=alice.id, created_at=now, last_activity_at=now)
        small = Conversation(created_by_id=alice.id, created_at=now, last_activity_at=now)
        session.add_all([big, small])
        session.flush()
        for conversation in (big, small):
            for user in (alice, bob):
                session.add(ConversationMember(conversation_id=conversation.id, user_id=user.id, joined_at=now))
        session.commit()
        return alice.id, bob.id, big.id, small.id


def _rows(conversation_id: int, senders: tuple[int, int], count: int, tag: str) -> Iterator[tuple]:
    for n in range(count):
        yield (conversation_id, senders[n % 2], f"history message {n} of {tag}", f"h{tag}{n}")


def _bulk_load(engine, conversation_id: int, senders: tuple[int, int], count: int, tag: str) -> None:
    bulk_insert_messages(engine, _rows(conversation_id, senders, count, tag), [conversation_id])


def bulk_insert_messages(engine, rows: Iterable[tuple[int, int, str, str]], conversation_ids: Iterable[int]) -> None:
    """Insert (conversation_id, sender_id, body, client_message_id) rows straight into the database.

    PostgreSQL takes them with COPY, SQLite with executemany in batches; then each
    of `conversation_ids` points at its newest message (as `send_message` leaves it).
    """
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cursor:
                with cursor.copy(
                    "COPY message (conversation_id, sender_id, body, client_message_id, created_at) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row((*row, now))
        else:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor = raw.cursor()
            batch = []
            for row in rows:
                batch.append((*row, stamp))
                if len(batch) >= BATCH:
                    cursor.executemany(
                        "INSERT INTO message (conversation_id, sender_id, body, client_message_id, created_at) VALUES (?, ?, ?, ?, ?)",
                        batch,
                    )
                    batch = []
            if batch:
                cursor.executemany(
                    "INSERT INTO message (conversation_id, sender_id, body, client_message_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    batch,
                )
            cursor.close()
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE conversation SET last_message_id = (SELECT max(id) FROM message WHERE conversation_id = :c) WHERE id = :c"
            ),
            [{"c": conversation_id} for conversation_id in conversation_ids],
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def _time_pages(engine, user_id: int, conversation_id: int, *, samples: int, seed: int) -> dict:
    with engine.connect() as connection:
        low, high = connection.execute(
            text("SELECT min(id), max(id) FROM message WHERE conversation_id = :c"), {"c": conversation_id}
        ).one()
    rng = random.Random(seed)
    span = high - low
    mids = [low + span // 4 + rng.randrange(max(1, span // 2)) for _ in range(samples)]
    times = []
    for index, before in enumerate([*mids[:20], *mids]):  # the first 20 warm the cache
        started = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            page = conversations.list_messages(
                session=session, user_id=user_id, conversation_id=conversation_id, before=before
            )
        elapsed = time.perf_counter() - started
        assert len(page) == conversations.PAGE_SIZE and page[-1].id < before
        if index >= 20:
            times.append(elapsed)
    return summary_ms(times)


def _time_commits(engine, user_id: int, conversation_id: int, n: int) -> dict:
    times = []
    for k in range(n):
        started = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            result = conversations.send_message(
                session=session, user_id=user_id, conversation_id=conversation_id,
                body=f"commit timing {k}", client_message_id=f"commit-{uuid.uuid4().hex[:16]}",
            )
        times.append(time.perf_counter() - started)
        assert result.created
    return summary_ms(times)


@contextmanager
def _database(kind: str, work_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        work_dir.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{work_dir / f'history-{uuid.uuid4().hex[:6]}.db'}"
    else:
        with temporary_postgres_database(POSTGRES_URL) as url:
            yield url


def run_db_bench(work_dir: Path, *, big: int, small: int = 10_000, samples: int = 200, commits: int = 500) -> dict:
    """History paging (big vs small conversation) and commit time, on SQLite and PostgreSQL."""
    results: dict = {"big_conversation_messages": big, "small_conversation_messages": small}
    for kind in ("sqlite", "postgresql"):
        with _database(kind, work_dir) as url:
            migrate(url)
            engine = build_engine(url)
            try:
                alice, bob, big_id, small_id = _seed_people(engine)
                started = time.monotonic()
                _bulk_load(engine, small_id, (alice, bob), small, "s")
                _bulk_load(engine, big_id, (alice, bob), big, "b")
                load_seconds = time.monotonic() - started
                entry = {
                    "bulk_load_seconds": round(load_seconds, 1),
                    "history_page_big_ms": _time_pages(engine, alice, big_id, samples=samples, seed=1),
                    "history_page_small_ms": _time_pages(engine, alice, small_id, samples=samples, seed=2),
                    "send_message_commit_ms": _time_commits(engine, alice, small_id, commits),
                }
                results[kind] = entry
                print(
                    f"  {kind}: loaded {big + small:,} rows in {load_seconds:.0f} s; page before=mid "
                    f"p50/p99 {entry['history_page_big_ms']['p50']}/{entry['history_page_big_ms']['p99']} ms "
                    f"({big:,}) vs {entry['history_page_small_ms']['p50']}/{entry['history_page_small_ms']['p99']} ms "
                    f"({small:,}); commit p50/p99 {entry['send_message_commit_ms']['p50']}/"
                    f"{entry['send_message_commit_ms']['p99']} ms",
                    flush=True,
                )
            finally:
                engine.dispose()
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    return results
