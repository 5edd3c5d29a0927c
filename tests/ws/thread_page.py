"""Opening /messages/{id} over a bare socket, with the events a page sends as it loads."""

from __future__ import annotations

from reflex.state import State

import chat_app.chat_app  # noqa: F401  (builds the state tree, as the server does)
from chat_app.states.session import SessionState
from chat_app.states.thread import ThreadState
from tests.support.reflex_client import ReflexSocket, handler_name


async def open_thread_page(socket: ReflexSocket, conversation_id: int) -> None:
    """Hydrate, check the sign-in and open the thread, as /messages/{id} does on load."""
    path, query = f"/messages/{conversation_id}", {"conversation_id": str(conversation_id)}
    for state_cls, handler in (
        (State, "hydrate"),
        (SessionState, "require_sign_in"),
        (ThreadState, "open"),
    ):
        await socket.send(handler_name(state_cls, handler), path=path, query=query)
        await socket.settle(quiet=0.3)
