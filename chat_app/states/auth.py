"""The sign-up and sign-in forms."""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx

from chat_app.db import run_in_session, run_password_work
from chat_app.domain import accounts, sessions
from chat_app.domain.errors import DomainError
from chat_app.states.session import SessionState, full_page_load, safe_next_path


class AuthFormState(rx.State):
    """Errors and progress of the sign-up and sign-in forms."""

    field_errors: dict[str, str] = {}
    form_error: str = ""
    submitting: bool = False

    @rx.event
    def clear_errors(self):
        """Forget the last attempt's errors (on page load)."""
        self.field_errors = {}
        self.form_error = ""
        self.submitting = False

    @rx.event
    async def sign_up(self, form: dict):
        """Create an account from the form and sign this tab in."""
        async for update in self._submit(form, sign_up=True):
            yield update

    @rx.event
    async def sign_in(self, form: dict):
        """Check the form's credentials and sign this tab in."""
        async for update in self._submit(form, sign_up=False):
            yield update

    async def _submit(self, form: dict, *, sign_up: bool):
        self.field_errors, self.form_error, self.submitting = {}, "", True
        email = str(form.get("email", ""))
        yield
        try:
            if sign_up:
                user = await run_password_work(
                    accounts.sign_up,
                    name=str(form.get("name", "")),
                    email=email,
                    password=str(form.get("password", "")),
                )
            else:
                user = await run_password_work(
                    accounts.sign_in,
                    email=email,
                    password=str(form.get("password", "")),
                    ip_address=self.router.session.client_ip,
                )
            ticket = await run_in_session(sessions.issue_sign_in_ticket, user_id=user.id)
        except DomainError as error:
            self.submitting = False
            if error.field:
                self.field_errors = {error.field: error.message}
            else:
                self.form_error = error.message
            return
        session_state = await self.get_state(SessionState)
        query = urlencode(
            {
                "ticket": ticket,
                "next": safe_next_path(self.router.url.query_parameters.get("next")),
                "return_to": session_state._page_origin(),
            }
        )
        yield full_page_load(session_state._backend_url(f"/api/auth/ticket?{query}"))
