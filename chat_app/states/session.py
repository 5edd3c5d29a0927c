"""Who is signed in in this tab: the person behind the socket's HttpOnly session cookie.

The socket guard (`chat_app.realtime.guard`) resolves the cookie before each
event; pushes, which arrive outside any event, re-check the session this tab
was bound to by its id. A tab, once bound to a person, never shows anyone else.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import reflex as rx

from chat_app.db import run_in_session
from chat_app.domain import sessions
from chat_app.domain.sessions import Authenticated
from chat_app.realtime import guard, push, topics

SIGN_IN_PATH = "/sign-in"
HOME_PATH = "/messages"


def safe_next_path(candidate: str | None) -> str:
    """Return `candidate` if it is a path on this site, else the messages page."""
    if (
        candidate
        and candidate.startswith("/")
        and not candidate.startswith("//")
        and "\\" not in candidate
    ):
        return candidate
    return HOME_PATH


def full_page_load(url: str) -> rx.event.EventSpec:
    """Leave for `url` with a full page load and a fresh client token.

    The new socket then carries the new cookie, and the next person in this tab
    never inherits the last one's server-side state.
    """
    return rx.call_script(
        f"window.sessionStorage.removeItem('token'); window.location.assign({json.dumps(url)})"
    )


class SessionState(rx.State):
    """The signed-in user of this tab (all zero/empty when signed out)."""

    user_id: int = 0
    user_name: str = ""
    user_email: str = ""
    _session_id: int = 0
    # The person this tab's token belongs to, for good: the guard refuses
    # events from anyone else's socket presenting it.
    _bound_user_id: int = 0

    def _backend_url(self, path: str) -> str:
        """Return an absolute URL of the back end this tab's socket talks to.

        In `reflex run` the page and the back end are on different ports; with
        `--env prod` they share one. The socket's own Host header is right in both.
        """
        scheme = "https" if self.router.headers.origin.startswith("https:") else "http"
        return f"{scheme}://{self.router.headers.host}{path}"

    def _page_origin(self) -> str:
        """Return the origin of the page this tab shows (sent with the socket upgrade)."""
        return self.router.headers.origin

    async def _authenticate(self) -> Authenticated | None:
        """The live session behind this tab now (the database decides, off the event loop)."""
        identity = guard.event_identity()
        if identity is not guard.NOT_AN_EVENT:
            return identity  # type: ignore[return-value]
        if not self._session_id:
            return None
        return await run_in_session(sessions.authenticate_session_id, session_id=self._session_id)

    async def _apply(self, authenticated: Authenticated | None) -> None:
        token = self.router.session.client_token
        if (
            authenticated is not None
            and self._bound_user_id
            and authenticated.user.id != self._bound_user_id
        ):
            authenticated = None
        if authenticated is None:
            if self.user_id:
                await push.unregister_tab(self.user_id, token)
                await self._forget_tab()
            return
        user, auth_session = authenticated.user, authenticated.auth_session
        self.user_id, self.user_name, self.user_email = user.id, user.name, user.email
        self._session_id, self._bound_user_id = auth_session.id, user.id
        await push.register_tab(user.id, token)

    async def _forget_tab(self) -> None:
        """Empty every state of this tab (no message text stays in the state store)."""
        bound = self._bound_user_id
        root = self._get_root_state()
        pending = list(type(root).get_substates())
        while pending:
            state_cls = pending.pop()
            pending.extend(state_cls.get_substates())
            if state_cls is type(self) or not state_cls.__module__.startswith("chat_app."):
                continue  # Reflex's own internal states are left alone
            (await root.get_state(state_cls)).reset()
        self.reset()
        self._bound_user_id = bound

    async def _verified_user_id(self) -> int:
        """Re-check the session now; 0 (and this tab signed out) if it died."""
        await self._apply(await self._authenticate())
        return self.user_id

    @rx.event
    async def load_user(self):
        """On load of a public page: show who is signed in, if anyone."""
        await self._verified_user_id()

    @rx.event
    async def require_sign_in(self):
        """On load of a protected page: send signed-out visitors to sign in, then back."""
        if not await self._verified_user_id():
            here = self.router.url.path or HOME_PATH
            query = self.router.url.query
            next_path = here + (f"?{query}" if query else "")
            return rx.redirect(f"{SIGN_IN_PATH}?{urlencode({'next': next_path})}", replace=True)
        return None

    @rx.event
    async def leave_if_signed_in(self):
        """On load of the sign-in and sign-up pages: signed-in visitors go on."""
        if await self._verified_user_id():
            return rx.redirect(
                safe_next_path(self.router.url.query_parameters.get("next")), replace=True
            )
        return None

    @rx.event
    async def sign_out(self):
        """End this session, empty this tab, and leave through the route that clears the cookie."""
        user_id, session_id = self.user_id, self._session_id
        if user_id and session_id:
            await run_in_session(
                sessions.revoke_session_if_present, user_id=user_id, session_id=session_id
            )
            push.publish([user_id], topics.SESSIONS_CHANGED)
        await self._apply(None)
        return full_page_load(
            self._backend_url("/api/auth/sign-out/complete?")
            + urlencode({"return_to": self._page_origin()})
        )

    async def _on_sessions_changed(self, _payload: object):
        """Pushed when one of the user's sessions ended (or may have): re-check this tab's."""
        if self.user_id and not await self._verified_user_id():
            return full_page_load(SIGN_IN_PATH)
        return None
