"""Most API tests call the running app; `test_caller` uses the domain tests' databases."""

from tests.domain.conftest import ada, engine, postgres_engine, session  # noqa: F401
