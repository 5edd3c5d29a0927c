"""`/messages`: the signed-in user's conversations."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import page_frame
from chat_app.states.session import SessionState


def messages_page() -> rx.Component:
    """Who is signed in; the conversations come with the messaging work."""
    return page_frame(
        rx.cond(
            SessionState.user_id,
            rx.vstack(
                rx.heading("Messages", size="7"),
                rx.text("Signed in as ", rx.text.strong(SessionState.user_name, id="signed-in-name"), " (", SessionState.user_email, ")"),
                spacing="3",
            ),
            rx.center(rx.spinner(size="3"), padding="4rem"),
        ),
        max_width="40rem",
    )
