"""Pushing changes into other tabs' Reflex state over their own websockets.

States register receivers for topics; `publish` then runs, for every open tab of
the given users, the receivers on that tab's state under the tab's state lock
(`App.modify_state`), and Reflex sends the resulting delta down that tab's
socket. With Redis, a push for a tab whose socket another worker holds is
handed to that worker over Redis pub/sub and applied there.

Publishing never waits for delivery: the fan-out runs as its own task, because
fanning out while the sender's own state lock is held can deadlock two senders
writing to each other. Each tab has at most one task applying its pushes, in
order; pushes that arrive meanwhile are applied together in one delta.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Awaitable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import reflex as rx
from reflex.state import BaseState, StateUpdate
from reflex.utils.token_manager import RedisTokenManager
from reflex_base.event import Event

from chat_app.realtime.guard import forget_event_identity
from chat_app.realtime.tabs import tab_registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Subscription:
    state_cls: type[BaseState]
    method_name: str


_app: rx.App | None = None
_subscriptions: dict[str, list[_Subscription]] = {}
_pending: set[asyncio.Task] = set()


def bind_app(app: rx.App) -> None:
    """Tell the push layer which app's states to modify (called once at start-up)."""
    global _app
    _app = app


def subscribe(topic: str, state_cls: type[BaseState], method_name: str) -> None:
    """Run `state_cls.<method_name>(payload)` in each recipient tab on `topic`.

    The method may return Reflex events (e.g. `rx.redirect`); they are sent to
    that tab to run.
    """
    _subscriptions.setdefault(topic, []).append(_Subscription(state_cls, method_name))


async def register_tab(user_id: int, token: str) -> None:
    """Record an open tab of a signed-in user so pushes reach it."""
    await tab_registry.add(user_id, token)


async def unregister_tab(user_id: int, token: str) -> None:
    """Forget a tab (its user signed out in it)."""
    await tab_registry.remove(user_id, token)


def publish(
    user_ids: Iterable[int], topic: str, payload: Any = None, *, skip: Collection[str] = ()
) -> asyncio.Task:
    """Deliver `payload` on `topic` to every open tab of `user_ids`, in the background.

    Publications leave in the order they were made: a tab gets two messages of
    a conversation in the order they were published on this worker.

    Args:
        user_ids: The recipients.
        topic: What changed.
        payload: Passed to each receiver.
        skip: Tabs (client tokens) not to deliver to, typically those that caused it.

    Returns:
        The task that routes this publication (and any made meanwhile) to the tabs.
    """
    global _outbox_task
    if _app is not None and _subscriptions.get(topic):
        _outbox.append(_Publication(sorted(set(user_ids)), topic, payload, frozenset(skip)))
    if _outbox_task is None or _outbox_task.done():
        _outbox_task = _spawn(_route_outbox())
    return _outbox_task


def publish_later(
    delay: float, user_ids: Iterable[int], topic: str, payload: Any = None
) -> asyncio.Task:
    """Like `publish`, after `delay` seconds (for things that expire on screen)."""
    user_ids = list(user_ids)

    async def later() -> None:
        await asyncio.sleep(delay)
        publish(user_ids, topic, payload)

    return _spawn(later())


def _spawn(delivery: Awaitable[None]) -> asyncio.Task:
    task = asyncio.ensure_future(delivery)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


@dataclass(frozen=True)
class _Publication:
    user_ids: list[int]
    topic: str
    payload: Any
    skip: frozenset[str]


# Publications not yet routed to tabs, oldest first. One task routes them, in
# order and in batches: one tab lookup for the whole batch, and one hand-over
# message per other worker.
_outbox: list[_Publication] = []
_outbox_task: asyncio.Task | None = None


async def _route_outbox() -> None:
    while _outbox and _app is not None:
        batch = list(_outbox)
        _outbox.clear()
        try:
            await _route(batch)
        except Exception:
            logger.exception("routing %d publications failed", len(batch))


async def _route(batch: list[_Publication]) -> None:
    tabs = await tab_registry.tokens(sorted({user for item in batch for user in item.user_ids}))
    owners: dict[str, str | None] = {}
    forwards: dict[str, list[tuple[list[tuple[int, str]], str, Any]]] = {}
    for item in batch:
        elsewhere: dict[str, list[tuple[int, str]]] = {}
        for user_id in item.user_ids:
            for token in tabs.get(user_id, ()):
                if token in item.skip:
                    continue
                if token not in owners:
                    owners[token] = await _socket_owner(user_id, token)
                owner = owners[token]
                if owner is _HERE:
                    _enqueue(token, user_id, item.topic, item.payload)
                elif owner is not None:
                    elsewhere.setdefault(owner, []).append((user_id, token))
        for owner, recipients in elsewhere.items():
            forwards.setdefault(owner, []).append((recipients, item.topic, item.payload))
    for owner, pushes in forwards.items():
        await _forward(owner, pushes)


_HERE = "this worker"


async def _socket_owner(user_id: int, token: str) -> str | None:
    """Which worker holds the tab's socket: `_HERE`, another's instance id, or None (gone).

    A tab that is gone is dropped from the registry.
    """
    assert _app is not None
    namespace = _app.event_namespace
    if namespace is None:
        return None
    token_manager = namespace._token_manager  # no public accessor in Reflex 0.10.1
    if isinstance(token_manager, RedisTokenManager):
        owner = await token_manager._get_token_owner(token)
        if owner is None:
            await tab_registry.remove(user_id, token)
            return None
        return _HERE if owner == token_manager.instance_id else owner
    if not await token_manager.is_token_connected(token):
        await tab_registry.remove(user_id, token)
        return None
    return _HERE


async def _forward(owner: str, pushes: list[tuple[list[tuple[int, str]], str, Any]]) -> None:
    """Hand pushes for tabs whose sockets another worker holds to that worker, in one message.

    With several workers, a delta computed here for a socket on another worker
    would travel through Redis and could overtake, or be overtaken by, that
    worker's own deltas, so a tab could get an older whole list after a newer
    one. Handing the push to the socket's own worker keeps every delta for a
    tab in the order its state lock was taken.

    Args:
        owner: The instance id of the worker holding the sockets.
        pushes: In publication order: the (user id, token) recipients, topic and payload.
    """
    assert _app is not None and _app.event_namespace is not None
    token_manager = _app.event_namespace._token_manager
    assert isinstance(token_manager, RedisTokenManager)
    try:
        await token_manager.redis.publish(_forward_channel(owner), pickle.dumps(pushes))
    except Exception:
        logger.exception("could not hand %d pushes to worker %s", len(pushes), owner)


# Pushes waiting for a tab, in arrival order: client token -> [(user id, topic, payload)].
# One drain task per tab applies them; pushes that pile up while it works are
# applied together, under one state lock and in one delta, so a busy server
# spends its time on fewer, larger updates instead of falling further behind.
_queues: dict[str, list[tuple[int, str, Any]]] = {}


def _enqueue(token: str, user_id: int, topic: str, payload: Any) -> None:
    queue = _queues.get(token)
    if queue is not None:
        queue.append((user_id, topic, payload))
        return
    _queues[token] = [(user_id, topic, payload)]
    _spawn(_drain(token))


async def _drain(token: str) -> None:
    try:
        while batch := _queues.get(token):
            _queues[token] = []
            await _apply(token, batch)
    finally:
        _queues.pop(token, None)


async def _apply(token: str, batch: list[tuple[int, str, Any]]) -> None:
    """Run the receivers of every push in `batch` on one tab, under one lock of its state."""
    assert _app is not None
    forget_event_identity()  # this runs for the tab, not for whoever caused it
    namespace = _app.event_namespace
    receivers = [
        (user_id, subscription, payload)
        for user_id, topic, payload in batch
        for subscription in _subscriptions.get(topic, [])
    ]
    if namespace is None or not receivers:
        return
    events: list = []
    try:
        async with _app.modify_state(
            rx.BaseStateToken(ident=token, cls=receivers[0][1].state_cls)
        ) as root:
            # Checked under the tab's lock, which the push may have waited for.
            if not _socket_is_here(token):
                return
            for user_id, subscription, payload in receivers:
                try:
                    state = await root.get_state(subscription.state_cls)
                    returned = await getattr(state, subscription.method_name)(payload)
                except Exception:
                    logger.exception("push %s to a tab of user %s failed", subscription, user_id)
                    continue
                if returned:
                    events.extend(returned if isinstance(returned, list) else [returned])
            if not _socket_is_here(token):  # it moved while the receivers ran
                root._clean()  # so Reflex sends its page no delta from here
                return
        if events:
            await namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), token)
    except Exception:
        logger.exception("pushes to tab %s… failed", token[:8])


def _socket_is_here(token: str) -> bool:
    """Whether this worker still holds the tab's socket.

    A tab that reconnected to another worker has rebuilt its state there; a
    delta from the state this worker still keeps would reach the page through
    Reflex's hand-over and mix the two. Its pushes were routed to the new
    worker as soon as it connected there, and a tab that left needs none.
    """
    assert _app is not None and _app.event_namespace is not None
    token_manager = _app.event_namespace._token_manager  # no public accessor in Reflex 0.10.1
    record = token_manager.token_to_socket.get(token)
    return record is not None and record.instance_id == token_manager.instance_id


def _forward_channel(instance_id: str) -> str:
    return f"chat_app:push:{instance_id}"


async def serve_forwarded_pushes(app: rx.App) -> None:
    """Deliver the pushes other workers hand to this one (with Redis; a no-op otherwise)."""
    while app.event_namespace is None:  # the socket server is set up as the app starts
        await asyncio.sleep(0.1)
    token_manager = app.event_namespace._token_manager
    if not isinstance(token_manager, RedisTokenManager):
        return
    while True:
        try:
            async with token_manager.redis.pubsub() as pubsub:
                await pubsub.subscribe(_forward_channel(token_manager.instance_id))
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    for recipients, topic, payload in pickle.loads(message["data"]):
                        for user_id, token in recipients:
                            _enqueue(token, user_id, topic, payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("forwarded pushes: Redis unavailable, subscribing again shortly")
            await asyncio.sleep(1)
