"""The names of what can be pushed to open tabs."""

SESSIONS_CHANGED = "sessions_changed"
"""One of the user's sessions was revoked: each tab re-checks its own."""

CONVERSATION_CHANGED = "conversation_changed"
"""A conversation got a message, a member or a new read position."""

TYPING = "typing"
"""Someone is typing in a conversation (never stored)."""

TYPING_EXPIRED = "typing_expired"
"""Time to drop "is typing" lines that were not renewed."""
