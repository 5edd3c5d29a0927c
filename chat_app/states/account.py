"""The account page: profile, password and the list of signed-in devices."""

from __future__ import annotations

from typing import TypedDict

import reflex as rx

from chat_app.clock import isoformat
from chat_app.db import run_in_session, run_password_work
from chat_app.domain import accounts, sessions
from chat_app.domain.errors import DomainError
from chat_app.realtime import push, topics
from chat_app.states.session import SessionState


class DeviceRow(TypedDict):
    """One signed-in device as the page lists it."""

    id: int
    device: str
    ip_address: str
    last_used_at: str
    created_at: str
    current: bool


def describe_user_agent(user_agent: str) -> str:
    """Turn a User-Agent header into "Browser on OS" for people to recognise."""
    ua = user_agent or ""
    browser = next(
        (
            name
            for needle, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("HeadlessChrome", "Headless Chrome"),
                ("Chrome/", "Chrome"),
                ("Firefox/", "Firefox"),
                ("Safari/", "Safari"),
                ("curl/", "curl"),
                ("python-httpx", "Python script"),
            )
            if needle in ua
        ),
        "Unknown browser",
    )
    system = next(
        (
            name
            for needle, name in (
                ("Android", "Android"),
                ("iPhone", "iOS"),
                ("iPad", "iPadOS"),
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("Linux", "Linux"),
            )
            if needle in ua
        ),
        "",
    )
    return f"{browser} on {system}" if system else browser


class AccountState(rx.State):
    """Forms and device list of /account."""

    devices: list[DeviceRow] = []
    name_error: str = ""
    name_saved: bool = False
    password_errors: dict[str, str] = {}
    password_saved: bool = False
    sessions_error: str = ""

    async def _signed_in(self) -> SessionState | None:
        session_state = await self.get_state(SessionState)
        return session_state if await session_state._verified_user_id() else None

    @rx.event
    async def load(self):
        """On page load (after the sign-in check): list this user's devices."""
        self.name_error, self.name_saved = "", False
        self.password_errors, self.password_saved = {}, False
        await self._reload_devices()

    async def _reload_devices(self) -> None:
        session_state = await self._signed_in()
        if session_state is None:
            self.devices = []
            return
        found = await run_in_session(sessions.list_sessions, user_id=session_state.user_id)
        self.devices = [
            DeviceRow(
                id=item.id,
                device=describe_user_agent(item.user_agent),
                ip_address=item.ip_address,
                last_used_at=isoformat(item.last_used_at),
                created_at=isoformat(item.created_at),
                current=item.id == session_state._session_id,
            )
            for item in found
        ]

    @rx.event
    async def rename(self, form: dict):
        """Save a new display name."""
        self.name_error, self.name_saved = "", False
        session_state = await self._signed_in()
        if session_state is None:
            return SessionState.require_sign_in
        try:
            user = await run_in_session(
                accounts.rename, user_id=session_state.user_id, name=str(form.get("name", ""))
            )
        except DomainError as error:
            self.name_error = error.message
            return None
        session_state.user_name = user.name
        self.name_saved = True
        return None

    @rx.event
    async def change_password(self, form: dict):
        """Change the password (checking the current one) and end every other session."""
        self.password_errors, self.password_saved = {}, False
        session_state = await self._signed_in()
        if session_state is None:
            return SessionState.require_sign_in
        if form.get("new_password") != form.get("confirm_password"):
            self.password_errors = {"confirm_password": "The two new passwords differ"}
            return None
        try:
            await run_password_work(
                accounts.change_password,
                user_id=session_state.user_id,
                current_password=str(form.get("current_password", "")),
                new_password=str(form.get("new_password", "")),
            )
        except DomainError as error:
            self.password_errors = {error.field or "form": error.message}
            return None
        await self._revoke_others(session_state)
        self.password_saved = True
        return rx.set_value("current_password", "")

    @rx.event
    async def revoke(self, session_id: int):
        """Revoke one of this user's sessions (another device, or this one)."""
        self.sessions_error = ""
        session_state = await self._signed_in()
        if session_state is None:
            return SessionState.require_sign_in
        try:
            await run_in_session(
                sessions.revoke_session, user_id=session_state.user_id, session_id=int(session_id)
            )
        except (DomainError, TypeError, ValueError):
            self.sessions_error = "That session is no longer active"
        push.publish([session_state.user_id], topics.SESSIONS_CHANGED)
        await self._reload_devices()
        return None

    @rx.event
    async def revoke_others(self):
        """Sign out every device but this one."""
        session_state = await self._signed_in()
        if session_state is None:
            return SessionState.require_sign_in
        await self._revoke_others(session_state)
        return None

    async def _revoke_others(self, session_state: SessionState) -> None:
        await run_in_session(
            sessions.revoke_other_sessions,
            user_id=session_state.user_id,
            keep_session_id=session_state._session_id,
        )
        push.publish([session_state.user_id], topics.SESSIONS_CHANGED)
        await self._reload_devices()
