"""`/messages` and `/messages/[conversation_id]`: the list beside the open thread.

On a narrow screen only one column shows: the list on /messages, the thread
(with a back button) on /messages/[id].
"""

from __future__ import annotations

import reflex as rx

from chat_app.components.conversation_list import conversation_list
from chat_app.components.layout import top_bar
from chat_app.components.thread import thread_view
from chat_app.states.session import SessionState

_ONLY_WIDE = ["none", "none", "flex"]
_ONLY_NARROW = ["flex", "flex", "none"]


def _frame(list_display, thread: rx.Component, thread_display) -> rx.Component:
    return rx.flex(
        top_bar(),
        rx.cond(
            SessionState.user_id,
            rx.flex(
                rx.box(
                    conversation_list(),
                    width=["100%", "100%", "22rem"],
                    flex_shrink="0",
                    border_right="1px solid var(--gray-a5)",
                    height="100%",
                    display=list_display,
                ),
                rx.box(thread, flex="1", height="100%", min_width="0", display=thread_display),
                flex="1",
                min_height="0",
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), flex="1"),
        ),
        direction="column",
        height="100dvh",
    )


def messages_page() -> rx.Component:
    """The list; on wide screens an invitation to pick a conversation beside it."""
    placeholder = rx.center(
        rx.vstack(
            rx.icon("message-circle", size=48, color="var(--gray-8)"),
            rx.text("Pick a conversation, or press + to start one.", color_scheme="gray"),
            rx.text(
                "Signed in as ",
                rx.text.strong(SessionState.user_name, id="signed-in-name"),
                size="1",
                color_scheme="gray",
            ),
            align="center",
        ),
        height="100%",
        width="100%",
    )
    return _frame("flex", placeholder, _ONLY_WIDE)


def thread_page() -> rx.Component:
    """The thread; on wide screens the list beside it."""
    return _frame(_ONLY_WIDE, thread_view(), "flex")
