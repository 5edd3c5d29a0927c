"""The open conversation: header, messages (newest at the bottom) and the composer."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import field_error
from chat_app.states.session import SessionState
from chat_app.states.thread import PARTS, MessageRow, ThreadState

# Made in the browser at each submit: a send re-delivered by the socket carries
# the same id and is stored once.
NEW_CLIENT_ID = rx.Var(
    "(Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 14))", _var_type=str
)

# Scrolling near the top of the thread presses "Load earlier messages" (which
# Reflex disables while a page is loading). In a column-reverse scroller the
# top is at scrollTop = -(scrollHeight - clientHeight).
LOAD_OLDER_ON_SCROLL = """
(() => {
  const scroller = document.getElementById("message-scroller");
  if (!scroller || scroller.dataset.loadsOlder) return;
  scroller.dataset.loadsOlder = "1";
  scroller.addEventListener("scroll", () => {
    const button = document.getElementById("load-older");
    const fromTop = scroller.scrollHeight - scroller.clientHeight + scroller.scrollTop;
    if (button && !button.disabled && fromTop < 150) button.click();
  }, {passive: true});
})()
"""

# About eight lines: a longer draft scrolls inside the composer instead of
# pushing the thread off a small screen.
COMPOSER_MAX_HEIGHT = "12rem"

MESSAGE_TIME_FORMATS = {
    "sameDay": "LT",
    "lastDay": "[Yesterday] LT",
    "lastWeek": "ddd LT",
    "sameElse": "ll LT",
    "nextDay": "LT",
    "nextWeek": "ll LT",
}


def _status(row: MessageRow) -> rx.Component:
    return rx.match(
        row["status"],
        (
            "sending",
            rx.text("Sending…", size="1", color_scheme="gray", class_name="message-sending"),
        ),
        (
            "failed",
            rx.hstack(
                rx.text(
                    "Failed",
                    size="1",
                    color_scheme="red",
                    class_name="message-failed",
                    title=row["error"],
                ),
                rx.button(
                    "Retry",
                    size="1",
                    variant="ghost",
                    color_scheme="red",
                    on_click=ThreadState.retry(row["client_id"]),
                    class_name="message-retry",
                ),
                spacing="2",
                align="center",
            ),
        ),
        rx.moment(
            row["created_at"],
            calendar=MESSAGE_TIME_FORMATS,
            font_size="11px",
            color="var(--gray-10)",
        ),
    )


def _shown_count() -> rx.Var[int]:
    """How many messages the thread shows, summed over the parts it travels in."""
    first, *others = (getattr(ThreadState, part).length() for part in PARTS)
    return sum(others, first)


def _one_name_per_run() -> rx.Component:
    """Their consecutive messages show the sender's name once, above the first.

    A stored row is shared by every tab that shows it and never changes, so
    whether it follows its sender's own message is decided on the page: a rule
    per member hides the name of a message right after one of the same sender's.
    """
    rules = ThreadState.member_ids.map(
        lambda member: (
            f'#message-list > [data-sender-id="{member}"] + '
            f'[data-sender-id="{member}"] .message-sender {{ display: none; }}'
        )
    )
    return rx.el.style(rules.join(" "))


@rx.memo
def message_bubble(row: rx.Var[MessageRow], viewer_id: rx.Var[int]) -> rx.Component:
    """One message.

    A React memo: a push re-renders the rows it changed, not the whole thread
    (the page keeps an unchanged row's object, and each row is keyed by its
    sender and client id, which a pending send keeps once it is stored).
    """
    return _message(row, viewer_id)


def _listed_message(row: MessageRow) -> rx.Component:
    return rx.fragment(
        message_bubble(row=row, viewer_id=SessionState.user_id),
        key=row["sender_id"].to_string() + ":" + row["client_id"],
    )


def _message(row: MessageRow, viewer_id: rx.Var[int]) -> rx.Component:
    # Decided here, not in the row: a stored row is one object for all its viewers.
    mine = row["sender_id"] == viewer_id
    return rx.box(
        rx.vstack(
            rx.cond(
                ~mine,
                rx.text(
                    row["sender_name"],
                    size="1",
                    weight="bold",
                    color_scheme="gray",
                    class_name="message-sender",
                ),
            ),
            rx.box(
                # Plain text: React escapes it, so a body is never parsed as HTML.
                rx.text(
                    row["body"],
                    size="2",
                    class_name="message-body",
                    white_space="pre-wrap",
                    word_break="break-word",
                ),
                background=rx.cond(mine, "var(--accent-9)", "var(--gray-a3)"),
                color=rx.cond(mine, "var(--accent-contrast)", "var(--gray-12)"),
                opacity=rx.cond(row["status"] == "sent", "1", "0.7"),
                padding="0.5rem 0.75rem",
                border_radius="var(--radius-4)",
                max_width="min(32rem, 80vw)",
            ),
            _status(row),
            spacing="1",
            align=rx.cond(mine, "end", "start"),
        ),
        display="flex",
        justify_content=rx.cond(mine, "flex-end", "flex-start"),
        width="100%",
        class_name=rx.cond(mine, "message message-mine", "message message-theirs"),
        custom_attrs={
            "data-message-id": row["id"],
            "data-client-id": row["client_id"],
            "data-sender-id": row["sender_id"],
        },
    )


def thread_header() -> rx.Component:
    """Back (on narrow screens), the conversation's name, and who is typing."""
    return rx.hstack(
        rx.link(
            rx.icon_button(rx.icon("arrow-left"), variant="ghost", aria_label="Back"),
            href="/messages",
            display=["inline-flex", "inline-flex", "none"],
            id="thread-back",
        ),
        rx.vstack(
            rx.heading(ThreadState.title, size="4", id="thread-title"),
            rx.text(
                rx.cond(
                    ThreadState.typing_text != "",
                    ThreadState.typing_text,
                    rx.cond(
                        ThreadState.member_ids.length() > 2,
                        ThreadState.member_ids.length().to_string() + " members",
                        "",
                    ),
                ),
                size="1",
                color_scheme="gray",
                id="typing-indicator",
                min_height="1em",
            ),
            spacing="0",
        ),
        width="100%",
        align="center",
        padding="0.75rem 1rem",
        border_bottom="1px solid var(--gray-a5)",
    )


def message_list() -> rx.Component:
    """The messages, oldest at the top; the view stays at the bottom as new ones arrive.

    `column-reverse` anchors the scroll position to the bottom, so the browser
    follows new messages while the reader is at the bottom and leaves the view
    alone when they have scrolled up.
    """
    return rx.box(
        rx.vstack(
            rx.cond(
                ThreadState.has_older,
                rx.center(
                    rx.button(
                        "Load earlier messages",
                        variant="soft",
                        size="1",
                        on_click=ThreadState.load_older,
                        loading=ThreadState.loading_older,
                        id="load-older",
                    ),
                    width="100%",
                ),
            ),
            rx.cond(
                ThreadState.loading,
                rx.center(rx.spinner(size="3"), padding="3rem", width="100%", id="thread-loading"),
                rx.cond(
                    _shown_count() == 0,
                    rx.center(
                        rx.text("No messages yet. Say hello!", color_scheme="gray", size="2"),
                        padding="3rem",
                        width="100%",
                        id="thread-empty",
                    ),
                ),
            ),
            *[rx.foreach(getattr(ThreadState, part), _listed_message) for part in PARTS],
            _one_name_per_run(),
            spacing="2",
            width="100%",
            padding="1rem",
            id="message-list",
        ),
        display="flex",
        flex_direction="column-reverse",
        overflow_y="auto",
        flex="1",
        width="100%",
        id="message-scroller",
        on_mount=rx.call_script(LOAD_OLDER_ON_SCROLL),
    )


def composer() -> rx.Component:
    """Enter sends, Shift+Enter adds a line; a rejected message stays here."""
    return rx.form(
        rx.vstack(
            field_error(ThreadState.composer_error, id="composer-error"),
            rx.hstack(
                rx.text_area(
                    name="body",
                    id="composer",
                    placeholder="Write a message",
                    enter_key_submit=True,
                    on_change=ThreadState.typing.throttle(2500),
                    auto_focus=True,
                    rows="2",
                    resize="vertical",
                    min_height="3rem",
                    width="100%",
                    size="3",
                    # Grows with what is typed (where the browser can), then scrolls.
                    style={
                        "& textarea": {
                            "field_sizing": "content",
                            "min_height": "3rem",
                            "max_height": COMPOSER_MAX_HEIGHT,
                        }
                    },
                ),
                rx.icon_button(
                    rx.icon("send-horizontal"),
                    type="submit",
                    size="3",
                    id="send",
                    aria_label="Send",
                ),
                width="100%",
                align="end",
            ),
            spacing="1",
            width="100%",
        ),
        on_submit=lambda form: ThreadState.send(form, NEW_CLIENT_ID),
        # Cleared in the browser as it submits, so typing on at once loses nothing.
        reset_on_submit=True,
        padding="0.75rem 1rem",
        border_top="1px solid var(--gray-a5)",
        width="100%",
        id="composer-form",
    )


def thread_view() -> rx.Component:
    """The whole right column for an open conversation (or "not found")."""
    return rx.cond(
        ThreadState.not_found,
        rx.center(
            rx.vstack(
                rx.heading("Conversation not found", size="5", id="conversation-not-found"),
                rx.link("Back to your conversations", href="/messages"),
                align="center",
            ),
            height="100%",
            width="100%",
        ),
        rx.vstack(
            thread_header(),
            message_list(),
            composer(),
            rx.window_event_listener(on_visibility_change=ThreadState.visibility_changed),
            spacing="0",
            height="100%",
            width="100%",
        ),
    )
