"""`/`: what chat_app is, and the way in."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import page_frame
from chat_app.states.session import SessionState


def home_page() -> rx.Component:
    """Welcome, with sign-up and sign-in (or the way back to messages)."""
    return page_frame(
        rx.vstack(
            rx.heading("Messages that arrive at once, everywhere", size="8"),
            rx.text(
                "Start a conversation with anyone's email address. Every message is saved "
                "and shows up instantly on every screen you have open.",
                size="4",
                color_scheme="gray",
            ),
            rx.cond(
                SessionState.user_id,
                rx.link(rx.button("Open messages", size="3"), href="/messages"),
                rx.hstack(
                    rx.link(rx.button("Create an account", size="3"), href="/sign-up"),
                    rx.link(rx.button("Sign in", size="3", variant="outline"), href="/sign-in"),
                ),
            ),
            spacing="5",
            padding_top="10vh",
        ),
        max_width="40rem",
    )
