"""Sessions expire while their tabs sit open: tell those tabs, within about a second."""

from __future__ import annotations

import asyncio
import logging

from chat_app.clock import utcnow
from chat_app.db import run_in_session
from chat_app.domain import sessions
from chat_app.realtime import push, topics

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


async def watch_session_expiry() -> None:
    """Every second, push a session re-check to the users whose sessions just expired.

    Each worker sweeps; a tab re-checked twice is still signed out once.
    """
    last = utcnow()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        now = utcnow()
        try:
            user_ids = await run_in_session(
                sessions.users_with_sessions_expired_between, start=last, end=now
            )
        except Exception:
            logger.exception("the session expiry sweep failed; trying again")
            continue
        last = now
        if user_ids:
            push.publish(user_ids, topics.SESSIONS_CHANGED)
