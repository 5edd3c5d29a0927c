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


def sign_up_form() -> rx.Component:
    """Name, email and password, with an error under each rejected field."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Create your account", size="6"),
                _form_error(),
                _field("Name", "name", autocomplete="name"),
                _field("Email", "email", type="email", autocomplete="email"),
                _field(
                    "Password",
                    "password",
                    type="password",
                    autocomplete="new-password",
                    hint="8 to 128 characters",
                ),
                rx.button(
                    "Sign up",
                    type="submit",
                    size="3",
                    width="100%",
                    loading=AuthFormState.submitting,
                    # Until the page is live a click would submit the form natively.
                    disabled=~rx.State.is_hydrated,
                    id="submit",
                ),
                rx.text(
                    "Already have an account? ",
                    rx.link("Sign in", href="/sign-in"),
                    size="2",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=AuthFormState.sign_up,
            method="post",
            id="sign-up-form",
        ),
        size="3",
        width="100%",
    )


def sign_in_form() -> rx.Component:
    """Email and password; one error for any wrong pair."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Sign in", size="6"),
                _form_error(),
                _field("Email", "email", type="email", autocomplete="email"),
                _field("Password", "password", type="password", autocomplete="current-password"),
                rx.button(
                    "Sign in",
                    type="submit",
                    size="3",
                    width="100%",
                    loading=AuthFormState.submitting,
                    # Until the page is live a click would submit the form natively.
                    disabled=~rx.State.is_hydrated,
                    id="submit",
                ),
                rx.text(
                    "New here? ",
                    rx.link("Create an account", href="/sign-up"),
                    size="2",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=AuthFormState.sign_in,
            method="post",
            id="sign-in-form",
        ),
        size="3",
        width="100%",
    )
