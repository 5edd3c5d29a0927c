"""The frame around every page: a top bar and a centred body."""

from __future__ import annotations

import reflex as rx

from chat_app.states.session import SessionState


def top_bar() -> rx.Component:
    """The app's name, and for a signed-in user: messages, account and sign out."""
    return rx.hstack(
        rx.link(
            rx.hstack(rx.icon("message-circle", size=22), rx.heading("chat_app", size="5")),
            href="/",
            underline="none",
            color_scheme="gray",
            high_contrast=True,
        ),
        rx.spacer(),
        rx.cond(
            SessionState.user_id,
            rx.hstack(
                rx.link(
                    "Messages", href="/messages", id="nav-messages", display=["none", "inline"]
                ),
                rx.link(
                    rx.text(
                        SessionState.user_name,
                        id="nav-user-name",
                        weight="medium",
                        max_width=["6rem", "16rem"],
                        overflow="hidden",
                        text_overflow="ellipsis",
                        white_space="nowrap",
                    ),
                    href="/account",
                    id="nav-account",
                ),
                rx.button(
                    "Sign out",
                    on_click=SessionState.sign_out,
                    variant="soft",
                    size="1",
                    id="sign-out",
                ),
                spacing="4",
                align="center",
            ),
            rx.hstack(
                rx.link("Sign in", href="/sign-in"),
                rx.link(rx.button("Sign up", size="1"), href="/sign-up"),
                spacing="4",
                align="center",
            ),
        ),
        width="100%",
        padding_x="1.25rem",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-a5)",
        align="center",
    )


def page_frame(*children: rx.Component, max_width: str = "28rem") -> rx.Component:
    """A page with the top bar and its content centred below."""
    return rx.box(
        top_bar(),
        rx.center(
            rx.box(*children, width="100%", max_width=max_width),
            padding="1.5rem",
            width="100%",
        ),
        min_height="100vh",
    )


def field_error(message: rx.Var[str], *, id: str) -> rx.Component:
    """A form field's error, shown only when there is one."""
    return rx.cond(
        message,
        rx.text(message, color_scheme="red", size="2", id=id),
    )
