"""Throwaway PostgreSQL databases and Redis indexes for test servers; PostgreSQL's round trips."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session


@contextmanager
def temporary_postgres_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database on the server at `server_url`; drop it afterwards.

    Yields:
        The new database's URL.
    """
    admin_url = make_url(server_url)
    name = f"chat_app_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def temporary_redis_database(
    server_url: str, *, indexes: Iterable[int] = range(15, 0, -1)
) -> Iterator[str]:
    """Take the first empty Redis database index of `indexes` on `server_url`; empty it afterwards.

    The index is marked taken at once, so others looking for an empty one pass it by
    (the tests scan down from 15, the benchmark up from 1).

    Yields:
        The URL of that index.
    """
    for index in indexes:
        client = redis.Redis.from_url(f"{server_url}/{index}")
        if client.dbsize() == 0:
            break
        client.close()
    else:
        raise RuntimeError("no empty Redis database index")
    client.set("chat_app:test:claimed", "1")
    try:
        yield f"{server_url}/{index}"
    finally:
        client.flushdb()
        client.close()


def redis_contents(client: redis.Redis) -> dict[bytes, list[bytes]]:
    """Every key Redis holds and every value under it, whatever the key's type."""
    contents: dict[bytes, list[bytes]] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        contents[key] = values
    return contents


@contextmanager
def round_trips(session: Session, trace_path: Path) -> Iterator[list[str]]:
    """Trace the PostgreSQL protocol of `session`'s connection; fill the list on exit.

    Each entry is what the client sent in one exchange, which ends when the server
    says it is ready for the next query (`ReadyForQuery`): the client waits for
    that before it sends more. In pipeline mode a trip's statements end with one
    `Sync`, so the server is ready only once, however early its other answers
    arrive. Lines of libpq's trace that continue a statement's text (it has line
    breaks) stay with it.
    """
    driver_connection = session.connection().connection.driver_connection
    trips: list[str] = []
    with trace_path.open("w") as trace:
        driver_connection.pgconn.trace(trace.fileno())
        driver_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield trips
        finally:
            driver_connection.pgconn.untrace()
    sent = ""
    for line in trace_path.read_text().splitlines():
        message = re.match(r"([FB])\t\d+\t(\w+)", line)
        if message is None or message.group(1) == "F":
            sent += line + "\n"
        elif message.group(2) == "ReadyForQuery":
            trips.append(sent)
            sent = ""
