"""Fixtures for the domain service tests: a fresh, migrated database per test.

The schema is always built by the project's real Alembic migrations, never by
`SQLModel.metadata.create_all`, so the tests also prove the migrations match
what the code expects.

Backends:
  * SQLite: a new database file in `tmp_path` for every test (always).
  * PostgreSQL: when `TEST_POSTGRES_URL` is set (e.g.
    ``postgresql+psycopg://root@127.0.0.1:5432/test``), a uniquely named
    database is created once per test session, migrated once, emptied with
    ``TRUNCATE ... RESTART IDENTITY CASCADE`` before every test, and dropped at
    the end.

`alembic/env.py` takes its engine from `chat_app.db.get_engine()` (looked up
when env.py runs). We point that name at the test engine while migrating, and
for the whole test, so nothing can ever reach the developer's real database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

import chat_app.db
import chat_app.models  # noqa: F401  (registers the tables)
from alembic import command
from chat_app.db import build_engine
from chat_app.models import User
from tests.domain.support import make_user

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or None

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@contextmanager
def _engine_as_app_engine(engine: Engine) -> Iterator[None]:
    """Make `chat_app.db.get_engine()` return `engine` for the duration."""
    original = chat_app.db.get_engine
    chat_app.db.get_engine = lambda: engine
    try:
        yield
    finally:
        chat_app.db.get_engine = original


def run_migrations(engine: Engine) -> None:
    """Upgrade the database behind `engine` to head with the real migrations."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    with _engine_as_app_engine(engine):
        command.upgrade(config, "head")


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A migrated PostgreSQL database private to this test session."""
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    admin_url = make_url(POSTGRES_URL)
    name = f"chat_app_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = build_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        run_migrations(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty, fully migrated database of the parametrised backend."""
    if request.param == "sqlite":
        engine = build_engine(f"sqlite:///{tmp_path / 'test.db'}")
        run_migrations(engine)
        try:
            with _engine_as_app_engine(engine):
                yield engine
        finally:
            engine.dispose()
    else:
        engine = request.getfixturevalue("postgres_engine")
        _truncate_all(engine)
        with _engine_as_app_engine(engine):
            yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session like the app's own (`expire_on_commit=False`) on a fresh database."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def ada(session: Session) -> User:
    """A person in the test's database."""
    return make_user(session, "Ada")


@pytest.fixture
def bob(session: Session) -> User:
    """Another person in the test's database."""
    return make_user(session, "Bob")
