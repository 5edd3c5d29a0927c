"""Who is signed in in this tab, read server-side from the socket's HttpOnly cookie."""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

import reflex as rx

from chat_app.config import settings
from chat_app.db import run_in_session
from chat_app.domain import sessions
from chat_app.domain.sessions import Authenticated
from chat_app.realtime import push, topics

SIGN_IN_PATH = "/sign-in"
HOME_PATH = "/messages"


def safe_next_path(candidate: str | None) -> str:
    """Return `candidate` if it is a path on this site, else the messages page."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
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

    def _session_token(self) -> str | None:
        raw = self.router.headers.cookie
        if not raw:
            return None
        try:
            morsel = SimpleCookie(raw).get(settings.session_cookie_name)
        except CookieError:
            return None
        return morsel.value if morsel else None

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
        """Check this tab's session cookie against the database (off the event loop)."""
        return await run_in_session(sessions.authenticate, token=self._session_token())

    async def _apply(self, authenticated: Authenticated | None) -> None:
        token = self.router.session.client_token
        if authenticated is None:
            if self.user_id:
                await push.unregister_tab(self.user_id, token)
            self.reset()
            return
        user = authenticated.user
        if self.user_id and self.user_id != user.id:
            await push.unregister_tab(self.user_id, token)
        self.user_id, self.user_name, self.user_email = user.id, user.name, user.email
        self._session_id = authenticated.auth_session.id
        await push.register_tab(user.id, token)

    async def _verified_user_id(self) -> int:
        """Re-check the session cookie now; 0 (and this tab signed out) if it died."""
        await self._apply(await self._authenticate())
        return self.user_id

    @rx.event
    async def load_user(self):
        """On load of a public page: show who is signed in, if anyone."""
        await self._apply(await self._authenticate())

    @rx.event
    async def require_sign_in(self):
        """On load of a protected page: send signed-out visitors to sign in, then back."""
        await self._apply(await self._authenticate())
        if not self.user_id:
            here = self.router.url.path or HOME_PATH
            query = self.router.url.query
            next_path = here + (f"?{query}" if query else "")
            return rx.redirect(f"{SIGN_IN_PATH}?{urlencode({'next': next_path})}", replace=True)
        return None

    @rx.event
    async def leave_if_signed_in(self):
        """On load of the sign-in and sign-up pages: signed-in visitors go on."""
        await self._apply(await self._authenticate())
        if self.user_id:
            return rx.redirect(
                safe_next_path(self.router.url.query_parameters.get("next")), replace=True
            )
        return None

    @rx.event
    async def sign_out(self):
        """Revoke this tab's session and leave through the route that clears the cookie."""
        await run_in_session(sessions.revoke_token, token=self._session_token())
        user_id = self.user_id
        await self._apply(None)
        if user_id:
            push.publish([user_id], topics.SESSIONS_CHANGED)
        return full_page_load(
            self._backend_url("/api/auth/sign-out/complete?")
            + urlencode({"return_to": self._page_origin()})
        )

    async def _on_sessions_changed(self, _payload: object):
        """Pushed when one of the user's sessions was revoked: re-check this tab's."""
        await self._apply(await self._authenticate())
        if not self.user_id:
            return full_page_load(SIGN_IN_PATH)
        return None

