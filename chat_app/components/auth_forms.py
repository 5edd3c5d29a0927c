"""The sign-up and sign-in forms."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import field_error
from chat_app.states.auth import AuthFormState


def _field(
    label: str, name: str, *, type: str = "text", autocomplete: str, hint: str = ""
) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(
            name=name,
            id=name,
            type=type,
            auto_complete=autocomplete,
            width="100%",
            size="3",
        ),
        rx.text(hint, size="1", color_scheme="gray") if hint else rx.fragment(),
        field_error(AuthFormState.field_errors.get(name, ""), id=f"{name}-error"),
        spacing="1",
        width="100%",
    )


def _form_error() -> rx.Component:
    return rx.cond(
        AuthFormState.form_error,
        rx.callout(
            AuthFormState.form_error,
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            id="form-error",
            width="100%",
        ),
    )


def _auth_card(
    *fields: rx.Component,
    heading: str,
    submit_label: str,
    on_submit,
    switch: tuple[str, str, str],
    form_id: str,
) -> rx.Component:
    question, link_text, link_href = switch
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(heading, size="6"),
                _form_error(),
                *fields,
                rx.button(
                    submit_label,
                    type="submit",
                    size="3",
                    width="100%",
                    loading=AuthFormState.submitting,
                    # Until the page is live a click would submit the form natively.
                    disabled=~rx.State.is_hydrated,
                    id="submit",
                ),
                rx.text(question, rx.link(link_text, href=link_href), size="2"),
                spacing="4",
                width="100%",
            ),
            on_submit=on_submit,
            method="post",
            id=form_id,
        ),
        size="3",
        width="100%",
    )


def sign_up_form() -> rx.Component:
    """Name, email and password, with an error under each rejected field."""
    return _auth_card(
        _field("Name", "name", autocomplete="name"),
        _field("Email", "email", type="email", autocomplete="email"),
        _field(
            "Password",
            "password",
            type="password",
            autocomplete="new-password",
            hint="8 to 128 characters",
        ),
        heading="Create your account",
        submit_label="Sign up",
        on_submit=AuthFormState.sign_up,
        switch=("Already have an account? ", "Sign in", "/sign-in"),
        form_id="sign-up-form",
    )


def sign_in_form() -> rx.Component:
    """Email and password; one error for any wrong pair."""
    return _auth_card(
        _field("Email", "email", type="email", autocomplete="email"),
        _field("Password", "password", type="password", autocomplete="current-password"),
        heading="Sign in",
        submit_label="Sign in",
        on_submit=AuthFormState.sign_in,
        switch=("New here? ", "Create an account", "/sign-up"),
        form_id="sign-in-form",
    )
