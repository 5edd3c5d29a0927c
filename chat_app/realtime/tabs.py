"""Which browser tabs each signed-in user has open (Reflex client tokens), and whose each tab is.

In memory for a single worker; in Redis when `REFLEX_REDIS_URL` is set, so
every worker sees every tab. Stale entries are pruned by the push layer when it
finds a token disconnected. A tab's person is recorded once, for good: each
worker keeps a tab's state in its own memory, so the socket guard on a worker
that has no state for a token asks here whom the token belongs to.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Protocol

import redis.exceptions

from chat_app.config import settings

logger = logging.getLogger(__name__)

_TTL_SECONDS = 7 * 24 * 3600
_MAX_CONNECTIONS = 16


class TabRegistry(Protocol):
    """The user id -> client tokens map."""

    async def add(self, user_id: int, token: str) -> None:
        """Record that `token` is a tab of `user_id`."""

    async def remove(self, user_id: int, token: str) -> None:
        """Forget the tab `token` of `user_id`."""

    async def tokens(self, user_ids: list[int]) -> dict[int, set[str]]:
        """Return the recorded tabs of each user."""

    async def bound_user(self, token: str) -> int | None:
        """The person the tab `token` was first recorded for, if another worker may know it."""


class MemoryTabRegistry:
    """Tabs of a single-worker app, in this process."""

    def __init__(self) -> None:
        """Start empty."""
        self._tabs: defaultdict[int, set[str]] = defaultdict(set)

    async def add(self, user_id: int, token: str) -> None:
        """Record that `token` is a tab of `user_id`."""
        self._tabs[user_id].add(token)

    async def remove(self, user_id: int, token: str) -> None:
        """Forget the tab `token` of `user_id`."""
        self._tabs[user_id].discard(token)

    async def tokens(self, user_ids: list[int]) -> dict[int, set[str]]:
        """Return the recorded tabs of each user."""
        return {user_id: set(self._tabs.get(user_id, ())) for user_id in user_ids}

    async def bound_user(self, token: str) -> int | None:
        """None: with one worker, the tab's own state is the only record of its person."""
        return None


class RedisTabRegistry:
    """Tabs of every worker, in a Redis set per user."""

    def __init__(self, url: str) -> None:
        """Connect lazily to the Redis at `url`."""
        import redis.asyncio

        # A burst of pushes waits for a free connection rather than opening
        # hundreds; without driver info, a new connection skips redis-py's
        # package-metadata lookup (seen at 11 % of a worker's time in a burst).
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=_MAX_CONNECTIONS, timeout=None, driver_info=None
        )
        self._redis = redis.asyncio.Redis(connection_pool=pool)

    @staticmethod
    def _key(user_id: int) -> str:
        return f"chat_app:tabs:{user_id}"

    @staticmethod
    def _owner_key(token: str) -> str:
        return f"chat_app:tab_owner:{token}"

    async def add(self, user_id: int, token: str) -> None:
        """Record that `token` is a tab of `user_id`, and bind it to them if it is new."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self._key(user_id), token)
            pipe.expire(self._key(user_id), _TTL_SECONDS)
            pipe.set(self._owner_key(token), user_id, nx=True)  # never rebinds a tab
            pipe.expire(self._owner_key(token), _TTL_SECONDS)
            await pipe.execute()

    async def remove(self, user_id: int, token: str) -> None:
        """Forget the tab `token` of `user_id`."""
        await self._redis.srem(self._key(user_id), token)

    async def tokens(self, user_ids: list[int]) -> dict[int, set[str]]:
        """Return the recorded tabs of each user."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.smembers(self._key(user_id))
            results = await pipe.execute()
        return {
            user_id: {token.decode() for token in members}
            for user_id, members in zip(user_ids, results, strict=True)
        }

    async def bound_user(self, token: str) -> int | None:
        """The person the tab `token` was first recorded for, by any worker.

        None while Redis is down: a worker asks only for a token it holds no
        state for, so there is nothing of the tab's to give away meanwhile.
        """
        try:
            owner = await self._redis.get(self._owner_key(token))
        except redis.exceptions.RedisError:
            logger.warning("tab registry: Redis unavailable, a tab's person is unknown")
            return None
        return int(owner) if owner is not None else None


def _create_registry() -> TabRegistry:
    if settings.redis_url:
        return RedisTabRegistry(settings.redis_url)
    return MemoryTabRegistry()


tab_registry: TabRegistry = _create_registry()
