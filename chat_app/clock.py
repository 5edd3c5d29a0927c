"""The one place the app reads the time. Every datetime is timezone-aware UTC."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


# A message's time is formatted for the list row of every tab it reaches: once is enough.
@functools.lru_cache(maxsize=4096)
def isoformat(moment: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with a `Z`, as Better Auth does.

    Args:
        moment: An aware datetime.

    Returns:
        e.g. "2026-11-24T03:54:46.123Z".
    """
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
