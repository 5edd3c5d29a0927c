"""Recover open tabs when Redis restarts and forgets everything.

With `REFLEX_REDIS_URL`, Redis holds Reflex's record of which worker owns which
socket and our user -> tabs registry (tab states stay in each worker's memory).
A Redis restart loses both while the sockets stay open, so pushes would stop
reaching them. Each worker keeps a marker key in Redis; when it vanishes, the
worker records its sockets in Redis again and asks each of its pages to run
Reflex's reconnect routine (hydrate, then the page's load handlers): no page
reload, and the load handlers re-register the tab and catch the thread up from
the database, which pushes made while Redis was down never reached.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import reflex as rx
from reflex.state import StateUpdate
from reflex_base import constants
from reflex_base.event import Event
from reflex_base.utils.format import format_event_handler

from chat_app.config import settings

logger = logging.getLogger(__name__)

MARKER_KEY = "chat_app:redis_epoch"
CHECK_SECONDS = 1.0


async def watch_for_redis_restarts(app: rx.App) -> None:
    """Every second, check that Redis still holds the marker; if it lost it, reconnect every tab."""
    if not settings.redis_url:
        return
    import redis.asyncio

    client = redis.asyncio.from_url(settings.redis_url)
    seen: bytes | None = None
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        try:
            await client.set(MARKER_KEY, uuid.uuid4().hex, nx=True)
            epoch = await client.get(MARKER_KEY)
        except Exception:  # Redis is down: wait for it to come back
            continue
        if seen is not None and epoch != seen:
            logger.warning("Redis lost its data: reconnecting this worker's sockets")
            await _rehydrate_local_tabs(app)
        seen = epoch


async def _rehydrate_local_tabs(app: rx.App) -> None:
    namespace = app.event_namespace
    if namespace is None:
        return
    token_manager = namespace._token_manager  # no public accessor in Reflex 0.10.1
    hydrate_and_load = format_event_handler(rx.State.event_handlers["hydrate_and_load"])
    for token, record in list(token_manager.token_to_socket.items()):
        if record.instance_id != token_manager.instance_id:
            continue  # another worker's socket, known here only from Redis
        sid = record.sid
        # Reflex's record of which worker owns this socket, so other workers'
        # pushes find it again...
        await token_manager._store_socket_record(token, record)
        # ...and the page's own reconnect routine, run by the page itself: the
        # state is hydrated afresh and the page's load handlers run again.
        update = StateUpdate(events=[Event(name=hydrate_and_load, payload={})])
        await namespace.emit(str(constants.SocketEvent.EVENT), update, to=sid)
