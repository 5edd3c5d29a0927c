"""Settings read from the environment, with defaults that run on a fresh machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


def _default_database_url() -> str:
    data_dir = Path(os.environ.get("CHAT_APP_DATA_DIR", DEFAULT_DATA_DIR))
    return f"sqlite:///{data_dir / 'chat_app.db'}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the app reads from its environment."""

    database_url: str
    redis_url: str | None
    session_ttl: timedelta = timedelta(days=7)
    session_refresh_after: timedelta = timedelta(days=1)
    throttle_window: timedelta = timedelta(minutes=10)
    throttle_max_failures: int = 5
    sign_in_ticket_ttl: timedelta = timedelta(seconds=30)
    session_cookie_name: str = "chat_app.session_token"


def load_settings() -> Settings:
    """Read the settings from the process environment.

    Returns:
        The settings in force for this process.
    """
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or _default_database_url(),
        redis_url=os.environ.get("REFLEX_REDIS_URL") or None,
    )


settings = load_settings()
