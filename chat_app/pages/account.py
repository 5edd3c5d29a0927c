"""`/account`: profile, password, devices."""

from __future__ import annotations

import reflex as rx

from chat_app.components.account import (
    devices_section,
    password_section,
    profile_section,
)
from chat_app.components.layout import page_frame
from chat_app.states.session import SessionState


def account_page() -> rx.Component:
    """The signed-in user's account settings."""
    return page_frame(
        rx.cond(
            SessionState.user_id,
            rx.vstack(
                rx.heading("Account", size="7"),
                profile_section(),
                password_section(),
                devices_section(),
                rx.button(
                    "Sign out", on_click=SessionState.sign_out, color_scheme="red", variant="soft"
                ),
                spacing="4",
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), padding="4rem"),
        ),
        max_width="40rem",
    )
