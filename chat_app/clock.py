"""The one place the app reads the time. Every datetime is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with a `Z`, as Better Auth does.

    Args:
        moment: An aware datetime.

    Returns:
        e.g. "2026-11-24T03:54:46.123Z".
    """
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
