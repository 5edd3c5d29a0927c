"""Which state method each pushed topic runs in a recipient tab, in order."""

from __future__ import annotations

from chat_app.realtime import push, topics
from chat_app.states.inbox import InboxState
from chat_app.states.session import SessionState
from chat_app.states.thread import ThreadState


def subscribe_states() -> None:
    """Register every receiver once, at start-up.

    The list goes before the thread: a tab showing the conversation marks it
    read and clears the list's badge in the same delta, so it never flashes up.
    """
    push.subscribe(topics.SESSIONS_CHANGED, SessionState, "_on_sessions_changed")
    push.subscribe(topics.CONVERSATION_CHANGED, InboxState, "_on_conversation_changed")
    push.subscribe(topics.CONVERSATION_CHANGED, ThreadState, "_on_conversation_changed")
    push.subscribe(topics.TYPING, ThreadState, "_on_typing")
    push.subscribe(topics.TYPING_EXPIRED, ThreadState, "_on_typing_expired")
