"""Fixtures for tests against the running app: the server, its database, HTTP clients, Chromium."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session

from chat_app.db import build_engine
from chat_app.models import SignInFailure
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.databases import (
    temporary_postgres_database,
    temporary_redis_database,
)
from tests.support.server import AppServer, migrate

DEFAULT_PASSWORD = "password123"


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The real app on SQLite, in memory-state mode, one worker, for the whole session."""
    folder = tmp_path_factory.mktemp("app")
    database_url = f"sqlite:///{folder / 'chat_app.db'}"
    migrate(database_url)
    server = AppServer(database_url=database_url, work_dir=folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def redis_app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app as it grows: PostgreSQL, Redis between the workers, two back-end workers.

    A throwaway PostgreSQL database and an empty Redis index of its own.
    """
    folder = tmp_path_factory.mktemp("app-pg-redis")
    with (
        temporary_postgres_database(POSTGRES_URL) as database_url,
        temporary_redis_database(REDIS_URL) as redis_url,
    ):
        migrate(database_url)
        server = AppServer(
            database_url=database_url,
            work_dir=folder,
            env={"REFLEX_REDIS_URL": redis_url, "GRANIAN_WORKERS": "2"},
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def app_db(app_server: AppServer) -> Iterator[Engine]:
    """An engine on the running app's own database, to look at what it stored."""
    engine = build_engine(app_server.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(app_db: Engine) -> Iterator[Session]:
    """A session on the running app's database."""
    with Session(app_db, expire_on_commit=False) as session:
        yield session


@pytest.fixture(autouse=True)
def _forget_failed_sign_ins(request: pytest.FixtureRequest) -> None:
    """Every test comes from 127.0.0.1: forget earlier tests' failures so throttling starts fresh."""
    if "app_server" not in request.fixturenames:
        return
    engine = request.getfixturevalue("app_db")
    with Session(engine) as session:
        session.exec(delete(SignInFailure))
        session.commit()


@pytest.fixture
def api(app_server: AppServer) -> Iterator[httpx.Client]:
    """An HTTP client that sends the app's own Origin, as a browser on the page would."""
    with httpx.Client(
        base_url=app_server.url, headers={"Origin": app_server.url}, timeout=20
    ) as client:
        yield client


@dataclass
class Account:
    """A user created through the API for a test."""

    name: str
    email: str
    password: str
    token: str
    id: int


def unique_email(prefix: str = "user") -> str:
    """An email address no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@test.com"


def create_account(base_url: str, name: str = "Test User", email: str | None = None) -> Account:
    """Sign up through `POST /api/auth/sign-up/email` on the app at `base_url`."""
    email = email or unique_email(name.split()[0].lower())
    response = httpx.post(
        f"{base_url}/api/auth/sign-up/email",
        json={"name": name, "email": email, "password": DEFAULT_PASSWORD},
        timeout=20,
    )
    response.raise_for_status()
    body = response.json()
    return Account(
        name=name,
        email=email,
        password=DEFAULT_PASSWORD,
        token=body["token"],
        id=int(body["user"]["id"]),
    )


@pytest.fixture
def make_account(app_server: AppServer):
    """Create accounts on the default test server."""
    return lambda name="Test User", email=None: create_account(app_server.url, name, email)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; tests open their own contexts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def new_context(browser, app_server: AppServer):
    """Open isolated browser contexts (separate cookie jars: separate people)."""
    contexts = []

    def open_context(**options):
        options.setdefault("base_url", app_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
