"""The push layer's tests use the domain tests' databases (both backends, migrated, empty)."""

from tests.domain.conftest import ada, bob, engine, postgres_engine, session  # noqa: F401
