"""The socket guard: every websocket event acts for the person whose cookie came with the socket.

Reflex keys a tab's server-side state by a client token the browser picks and
presents when its socket connects, so a token is a bearer credential: anyone
presenting a signed-in tab's token would be served that tab's state. The guard
runs before every event (the first snapshot included) and:

- resolves the session cookie sent with the socket's upgrade request, and
  makes that identity the only one handlers see for this event;
- refuses the event when the token is malformed, or when the tab is bound to
  a different person than the cookie's (or to anyone, without a cookie):
  nothing is sent but an order to start afresh, and the socket is dropped, so
  pushes to that token stop too. The binding is in the tab's state, and, for a
  worker that holds no state for the token yet, in the tab registry;
- removes the cookie from the router data kept in the state, so the state
  never holds a session token.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

import reflex as rx
from reflex.middleware import Middleware
from reflex.state import BaseState, StateUpdate
from reflex_base.event import Event

from chat_app.config import settings
from chat_app.db import run_in_session
from chat_app.domain import sessions
from chat_app.domain.sessions import Authenticated
from chat_app.realtime.tabs import tab_registry

if TYPE_CHECKING:
    from reflex.app import App

logger = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NOT_RESOLVED = object()
_current: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "chat_app_socket_identity", default=_NOT_RESOLVED
)

# Sent instead of any state to a refused socket: forget the token, load afresh.
START_AFRESH_JS = "window.sessionStorage.removeItem('token'); window.location.reload()"


def session_token_from_cookie_header(cookie_header: str) -> str | None:
    """The session token in a Cookie header, or None."""
    if not cookie_header:
        return None
    try:
        morsel = SimpleCookie(cookie_header).get(settings.session_cookie_name)
    except CookieError:
        return None
    return morsel.value if morsel else None


def event_identity() -> Authenticated | None | object:
    """Who the guard found behind the event being handled.

    Returns:
        The session and user, None for a signed-out socket, or `NOT_AN_EVENT`
        outside an event (in a push, where the tab's stored session id is used).
    """
    return _current.get()


NOT_AN_EVENT = _NOT_RESOLVED


def forget_event_identity() -> None:
    """Make sure code running outside an event (pushes) sees no event's identity."""
    _current.set(_NOT_RESOLVED)


class SocketGuard(Middleware):
    """Binds each client token to one person and refuses everyone else."""

    def __init__(self, *, binding_state: type[BaseState], bound_user_attribute: str):
        """Guard with the user id bound to a tab kept in `binding_state.<bound_user_attribute>`."""
        self.binding_state = binding_state
        self.bound_user_attribute = bound_user_attribute

    async def preprocess(self, app: App, state: BaseState, event: Event) -> StateUpdate | None:
        """Resolve the socket's cookie, strip it from the state, refuse a stranger's event."""
        headers = state.router_data.get("headers") or {}
        token = session_token_from_cookie_header(headers.get("cookie", ""))
        authenticated = await run_in_session(sessions.authenticate, token=token) if token else None
        _current.set(authenticated)
        _strip_cookie(state)

        client_token = state.router.session.client_token
        if not _UUID.match(client_token or ""):
            return self._refuse(app, state, "a malformed client token")
        binding = await state.get_state(self.binding_state)
        bound_user_id = getattr(binding, self.bound_user_attribute) or (
            await tab_registry.bound_user(client_token)
        )
        if bound_user_id and (authenticated is None or authenticated.user.id != bound_user_id):
            return self._refuse(app, state, f"a tab bound to user {bound_user_id}")
        return None

    def _refuse(self, app: App, state: BaseState, why: str) -> StateUpdate:
        sid = state.router.session.session_id
        logger.warning("socket guard refused an event on %s", why)
        namespace = app.event_namespace
        if namespace is not None and sid:
            # Let the "start afresh" order go out first, then drop the socket.
            asyncio.get_running_loop().call_later(
                0.3, lambda: asyncio.ensure_future(namespace.disconnect(sid))
            )
        return StateUpdate(events=Event.from_event_type(rx.call_script(START_AFRESH_JS)))


def _strip_cookie(state: BaseState) -> None:
    router_data = state.router_data
    headers = router_data.get("headers") or {}
    if "cookie" not in headers:
        return
    stripped = {**router_data, "headers": {k: v for k, v in headers.items() if k != "cookie"}}
    state.router_data = state._update_router_vars(stripped, router_data)
