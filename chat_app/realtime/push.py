"""Pushing changes into other tabs' Reflex state over their own websockets.

States register receivers for topics; `publish` then runs, for every open tab of
the given users, the receiver on that tab's state under the tab's state lock
(`App.modify_state`), and Reflex sends the resulting delta down that tab's
socket. With Redis the lock and the delivery work across workers (a tab on
another worker is reached through Reflex's lost-and-found channel).

Publishing never waits for delivery: the fan-out runs as its own task, because
fanning out while the sender's own state lock is held can deadlock two senders
writing to each other.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Awaitable, Iterable
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
    user_ids: Iterable[int], topic: str, payload: Any = None, *, skip_token: str | None = None
) -> asyncio.Task:
    """Deliver `payload` on `topic` to every open tab of `user_ids`, in the background.

    Args:
        user_ids: The recipients.
        topic: What changed.
        payload: Passed to each receiver.
        skip_token: A tab not to deliver to (typically the one that caused it).

    Returns:
        The delivery task.
    """
    return _spawn(_deliver(sorted(set(user_ids)), topic, payload, skip_token))


def publish_later(
    delay: float, user_ids: Iterable[int], topic: str, payload: Any = None
) -> asyncio.Task:
    """Like `publish`, after `delay` seconds (for things that expire on screen)."""

    async def later() -> None:
        await asyncio.sleep(delay)
        await _deliver(sorted(set(user_ids)), topic, payload, None)

    return _spawn(later())


def _spawn(delivery: Awaitable[None]) -> asyncio.Task:
    task = asyncio.ensure_future(delivery)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


async def _deliver(user_ids: list[int], topic: str, payload: Any, skip_token: str | None) -> None:
    if _app is None or not _subscriptions.get(topic) or not user_ids:
        return
    tabs = await tab_registry.tokens(user_ids)
    deliveries = [
        _deliver_to_tab(user_id, token, topic, payload)
        for user_id, tokens in tabs.items()
        for token in tokens
        if token != skip_token
    ]
    await asyncio.gather(*deliveries)


async def _deliver_to_tab(user_id: int, token: str, topic: str, payload: Any) -> None:
    """Run the topic's receivers for one tab, on the worker that holds its socket.

    With several workers, a delta computed here for a socket on another worker
    would travel through Redis and could overtake, or be overtaken by, that
    worker's own deltas, so a tab could get an older whole list after a newer
    one. Handing the push to the socket's own worker keeps every delta for a
    tab in the order its state lock was taken.
    """
    assert _app is not None
    forget_event_identity()  # this runs for the tab, not for whoever caused it
    namespace = _app.event_namespace
    if namespace is None:
        return
    token_manager = namespace._token_manager  # no public accessor in Reflex 0.10.1
    if isinstance(token_manager, RedisTokenManager):
        owner = await token_manager._get_token_owner(token)
        if owner is None:
            await tab_registry.remove(user_id, token)
            return
        if owner != token_manager.instance_id:
            message = pickle.dumps((user_id, token, topic, payload))
            await token_manager.redis.publish(_forward_channel(owner), message)
            return
    elif not await token_manager.is_token_connected(token):
        await tab_registry.remove(user_id, token)
        return
    for subscription in _subscriptions.get(topic, []):
        try:
            async with _app.modify_state(
                rx.BaseStateToken(ident=token, cls=subscription.state_cls)
            ) as root:
                state = await root.get_state(subscription.state_cls)
                events = await getattr(state, subscription.method_name)(payload)
            if events:
                await namespace.emit_update(
                    StateUpdate(events=Event.from_event_type(events)), token
                )
        except Exception:
            logger.exception("push %s to a tab of user %s failed", subscription, user_id)


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
                    user_id, token, topic, payload = pickle.loads(message["data"])
                    _spawn(_deliver_to_tab(user_id, token, topic, payload))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("forwarded pushes: Redis unavailable, subscribing again shortly")
            await asyncio.sleep(1)
