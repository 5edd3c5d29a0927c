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

    Args:
        user_ids: The recipients.
        topic: What changed.
        payload: Passed to each receiver.
        skip: Tabs (client tokens) not to deliver to, typically those that caused it.

    Returns:
        The delivery task.
    """
    return _spawn(_deliver(sorted(set(user_ids)), topic, payload, frozenset(skip)))


def publish_later(
    delay: float, user_ids: Iterable[int], topic: str, payload: Any = None
) -> asyncio.Task:
    """Like `publish`, after `delay` seconds (for things that expire on screen)."""

    async def later() -> None:
        await asyncio.sleep(delay)
        await _deliver(sorted(set(user_ids)), topic, payload, frozenset())

    return _spawn(later())


def _spawn(delivery: Awaitable[None]) -> asyncio.Task:
    task = asyncio.ensure_future(delivery)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


async def _deliver(user_ids: list[int], topic: str, payload: Any, skip: frozenset[str]) -> None:
    if _app is None or not _subscriptions.get(topic) or not user_ids:
        return
    tabs = await tab_registry.tokens(user_ids)
    forwards: dict[str, list[tuple[int, str]]] = {}
    for user_id, tokens in tabs.items():
        for token in tokens:
            if token in skip:
                continue
            owner = await _socket_owner(user_id, token)
            if owner is _HERE:
                _enqueue(token, user_id, topic, payload)
            elif owner is not None:
                forwards.setdefault(owner, []).append((user_id, token))
    for owner, recipients in forwards.items():
        await _forward(owner, recipients, topic, payload)


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


async def _forward(owner: str, recipients: list[tuple[int, str]], topic: str, payload: Any) -> None:
    """Hand a push for tabs whose sockets another worker holds to that worker, in one message.

    With several workers, a delta computed here for a socket on another worker
    would travel through Redis and could overtake, or be overtaken by, that
    worker's own deltas, so a tab could get an older whole list after a newer
    one. Handing the push to the socket's own worker keeps every delta for a
    tab in the order its state lock was taken.
    """
    assert _app is not None and _app.event_namespace is not None
    token_manager = _app.event_namespace._token_manager
    assert isinstance(token_manager, RedisTokenManager)
    message = pickle.dumps((recipients, topic, payload))
    try:
        await token_manager.redis.publish(_forward_channel(owner), message)
    except Exception:
        logger.exception("could not hand a push to worker %s", owner)


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
            for user_id, subscription, payload in receivers:
                try:
                    state = await root.get_state(subscription.state_cls)
                    returned = await getattr(state, subscription.method_name)(payload)
                except Exception:
                    logger.exception("push %s to a tab of user %s failed", subscription, user_id)
                    continue
                if returned:
                    events.extend(returned if isinstance(returned, list) else [returned])
        if events:
            await namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), token)
    except Exception:
        logger.exception("pushes to tab %s… failed", token[:8])


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
                    recipients, topic, payload = pickle.loads(message["data"])
                    for user_id, token in recipients:
                        _enqueue(token, user_id, topic, payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("forwarded pushes: Redis unavailable, subscribing again shortly")
            await asyncio.sleep(1)
