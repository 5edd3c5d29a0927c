"""The names of what can be pushed to open tabs, and what they carry."""

from __future__ import annotations

from chat_app.domain.conversations import ReadPosition, SendResult

SESSIONS_CHANGED = "sessions_changed"
"""One of the user's sessions was revoked: each tab re-checks its own."""

CONVERSATION_CHANGED = "conversation_changed"
"""A conversation got a message, a member or a new read position."""

TYPING = "typing"
"""Someone is typing in a conversation (never stored)."""

TYPING_EXPIRED = "typing_expired"
"""Time to drop "is typing" lines that were not renewed."""


def new_message_payload(result: SendResult) -> dict:
    """What `CONVERSATION_CHANGED` carries for a stored message.

    Enough for each tab to show it and update its list without a database
    round trip of its own: the message, the one before it (a tab that lacks
    that one catches up from the database instead), and every member's unread
    count.
    """
    return {
        "conversation_id": result.message.conversation_id,
        "sender_id": result.message.sender_id,
        "message": result.message,
        "previous_message_id": result.previous_message_id,
        "unread_by_member": result.unread_by_member,
        "read_position_by_member": result.read_position_by_member,
    }


def read_payload(position: ReadPosition) -> dict:
    """What `CONVERSATION_CHANGED` carries when a member's read position moved.

    Only that member's tabs get it; it carries their new unread count.
    """
    return {
        "conversation_id": position.conversation_id,
        "read_up_to": position.last_read_message_id,
        "unread": position.unread_count,
        "newest_message_id": position.newest_message_id,
    }
