"""The conversation list: search, "+" for a new conversation, and one row per conversation."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import field_error
from chat_app.states.inbox import TIERS, ConversationRow, InboxState
from chat_app.states.thread import ThreadState

LIST_TIME_FORMATS = {
    "sameDay": "LT",
    "lastDay": "[Yesterday]",
    "lastWeek": "ddd",
    "sameElse": "ll",
    "nextDay": "LT",
    "nextWeek": "ll",
}


def new_conversation_dialog() -> rx.Component:
    """The "+" button and its dialog asking for one or more emails."""
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.icon_button(
                rx.icon("plus"),
                size="2",
                variant="soft",
                id="new-conversation",
                aria_label="New conversation",
            ),
        ),
        rx.dialog.content(
            rx.dialog.title("New conversation"),
            rx.dialog.description(
                "Enter the email of the person to write to. Several emails, separated by "
                "commas, start a group.",
                size="2",
            ),
            rx.form(
                rx.vstack(
                    rx.input(
                        name="emails",
                        id="new-conversation-emails",
                        placeholder="user2@test.com",
                        auto_focus=True,
                        width="100%",
                        size="3",
                    ),
                    field_error(InboxState.new_error, id="new-conversation-error"),
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button(
                            "Start chat",
                            type="submit",
                            loading=InboxState.starting,
                            id="start-conversation",
                        ),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    padding_top="0.75rem",
                ),
                on_submit=InboxState.start_conversation,
                reset_on_submit=False,
            ),
            max_width="28rem",
        ),
        open=InboxState.new_dialog_open,
        on_open_change=InboxState.new_dialog_changed,
    )


def _avatar(row: ConversationRow) -> rx.Component:
    return rx.avatar(fallback=row["initials"], size="3", radius="full", variant="soft")


@rx.memo
def listed_conversation(
    row: rx.Var[ConversationRow], needle: rx.Var[str], open_id: rx.Var[int]
) -> rx.Component:
    """One row of the list, if it matches the search.

    A React memo: a push re-renders the rows it changed, not the whole list (the
    page keeps an unchanged row's object, and each row is keyed by its id).
    """
    return rx.cond(row["search_text"].contains(needle), _row(row, open_id))


def _listed_row(row: ConversationRow) -> rx.Component:
    # Keyed by id, so a row that moves up keeps its element.
    return rx.fragment(
        listed_conversation(
            row=row, needle=InboxState.search_needle, open_id=ThreadState.conversation_id
        ),
        key=row["id"],
    )


def _row(row: ConversationRow, open_id: rx.Var[int]) -> rx.Component:
    active = row["id"] == open_id
    return rx.link(
        rx.hstack(
            _avatar(row),
            rx.vstack(
                rx.hstack(
                    rx.text(
                        row["title"],
                        weight="bold",
                        size="2",
                        class_name="conversation-title",
                        overflow="hidden",
                        text_overflow="ellipsis",
                        white_space="nowrap",
                        min_width="0",
                    ),
                    rx.spacer(),
                    rx.cond(
                        row["has_messages"],
                        rx.moment(
                            row["last_activity_at"],
                            calendar=LIST_TIME_FORMATS,
                            size="1",
                            color="var(--gray-10)",
                            font_size="12px",
                            class_name="conversation-time",
                            white_space="nowrap",
                            flex_shrink="0",
                        ),
                    ),
                    width="100%",
                    align="center",
                ),
                rx.hstack(
                    rx.text(
                        rx.cond(row["preview_is_mine"], "You: ", ""),
                        rx.cond(row["has_messages"], row["preview"], "No messages yet"),
                        size="2",
                        color_scheme="gray",
                        class_name="conversation-preview",
                        overflow="hidden",
                        text_overflow="ellipsis",
                        white_space="nowrap",
                        flex="1",
                        min_width="0",
                    ),
                    rx.cond(
                        row["unread"] > 0,
                        rx.badge(
                            row["unread"], radius="full", variant="solid", class_name="unread-badge"
                        ),
                    ),
                    width="100%",
                    align="center",
                ),
                spacing="1",
                width="100%",
                min_width="0",
            ),
            padding="0.75rem",
            width="100%",
            align="center",
            border_radius="var(--radius-3)",
            background=rx.cond(active, "var(--accent-a4)", "transparent"),
            _hover={"background": rx.cond(active, "var(--accent-a4)", "var(--gray-a3)")},
        ),
        href=row["href"],
        underline="none",
        color="inherit",
        class_name="conversation-row",
        custom_attrs={"data-conversation-id": row["id"]},
        width="100%",
    )


def _empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("messages-square", size=40, color="var(--gray-9)"),
            rx.text("No conversations yet", weight="bold"),
            rx.text(
                "Press + and enter someone's email to start one.",
                size="2",
                color_scheme="gray",
                text_align="center",
            ),
            align="center",
            spacing="2",
        ),
        padding="3rem 1rem",
        id="conversations-empty",
    )


def _skeleton() -> rx.Component:
    return rx.vstack(
        *[
            rx.hstack(
                rx.skeleton(rx.box(width="40px", height="40px"), loading=True),
                rx.vstack(
                    rx.skeleton(rx.box(height="12px", width="60%"), loading=True),
                    rx.skeleton(rx.box(height="12px", width="85%"), loading=True),
                    width="100%",
                ),
                width="100%",
                padding="0.75rem",
            )
            for _ in range(4)
        ],
        width="100%",
        id="conversations-loading",
    )


def conversation_list() -> rx.Component:
    """The whole left column."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Messages", size="5"),
            rx.cond(
                InboxState.total_unread > 0,
                rx.badge(InboxState.total_unread, radius="full", variant="soft"),
            ),
            rx.spacer(),
            new_conversation_dialog(),
            width="100%",
            align="center",
            padding_x="0.75rem",
            padding_top="0.75rem",
        ),
        rx.box(
            rx.input(
                rx.input.slot(rx.icon("search", size=16)),
                placeholder="Search by name or email",
                value=InboxState.search,
                on_change=InboxState.search_changed,
                id="conversation-search",
                width="100%",
            ),
            width="100%",
            padding_x="0.75rem",
        ),
        rx.box(
            rx.cond(
                InboxState.loaded,
                rx.cond(
                    InboxState.rows_0.length() > 0,  # the first tier fills first
                    rx.vstack(
                        *[rx.foreach(getattr(InboxState, tier), _listed_row) for tier in TIERS],
                        rx.cond(
                            InboxState.match_count == 0,
                            rx.text(
                                "No conversation matches",
                                size="2",
                                color_scheme="gray",
                                padding="1rem",
                            ),
                        ),
                        spacing="0",
                        width="100%",
                        id="conversation-list",
                    ),
                    _empty_state(),
                ),
                _skeleton(),
            ),
            width="100%",
            flex="1",
            overflow_y="auto",
            padding_x="0.25rem",
        ),
        spacing="3",
        height="100%",
        width="100%",
    )
