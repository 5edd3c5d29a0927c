"""Throwaway PostgreSQL databases and Redis indexes for test servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


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
