"""Read positions noted by open tabs, written to the database in batches.

A tab that shows a conversation marks it read each time a message arrives in
it. Writing each mark at once would cost a commit per message per reader; the
marks are instead gathered for a moment and written in one transaction, and the
readers' other tabs are then told the new unread counts. The tab that read
clears its own badge by itself, at once.
"""

from __future__ import annotations

import asyncio
import logging

from chat_app.db import run_in_session
from chat_app.domain import conversations
from chat_app.realtime import push, topics

logger = logging.getLogger(__name__)

FLUSH_DELAY_SECONDS = 0.15

# (user id, conversation id) -> (read up to this message id, tabs that read it)
_pending: dict[tuple[int, int], tuple[int, set[str]]] = {}
_flush_task: asyncio.Task | None = None
_flush_lock = asyncio.Lock()


def note_read(*, user_id: int, conversation_id: int, message_id: int, token: str) -> None:
    """Record that tab `token` of `user_id` has shown `conversation_id` up to `message_id`."""
    global _flush_task
    if message_id <= 0:
        return
    key = (user_id, conversation_id)
    up_to, tokens = _pending.get(key, (0, set()))
    tokens.add(token)
    _pending[key] = (max(up_to, message_id), tokens)
    if _flush_task is None or _flush_task.done():
        _flush_task = asyncio.ensure_future(_flush_soon())


async def _flush_soon() -> None:
    await asyncio.sleep(FLUSH_DELAY_SECONDS)
    await flush()


async def flush() -> None:
    """Write every read position noted so far (the list page reads after its own marks)."""
    async with _flush_lock:
        while _pending:
            batch = dict(_pending)
            _pending.clear()
            try:
                moved = await run_in_session(
                    conversations.mark_read_many,
                    marks=[
                        (user, conversation, up_to)
                        for (user, conversation), (up_to, _) in batch.items()
                    ],
                )
            except Exception:
                logger.exception("could not store %d read positions", len(batch))
                return
            for position in moved:
                _, readers = batch[(position.user_id, position.conversation_id)]
                push.publish(
                    [position.user_id],
                    topics.CONVERSATION_CHANGED,
                    topics.read_payload(position),
                    skip=readers,
                )
