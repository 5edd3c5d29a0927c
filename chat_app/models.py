"""Database tables. Times are timezone-aware UTC (see `chat_app.clock`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    """A person with an account. `email` is stored lower-cased."""

    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=100)
    password_hash: str = Field(max_length=255)
    created_at: datetime
    updated_at: datetime


class AuthSession(SQLModel, table=True):
    """A signed-in device. Only the SHA-256 of its bearer token is kept."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    last_used_at: datetime
    user_agent: str = Field(default="", max_length=512)
    ip_address: str = Field(default="", max_length=64)


class SignInTicket(SQLModel, table=True):
    """A single-use, seconds-long proof of a sign-in done over the websocket.

    The websocket cannot set an HttpOnly cookie, so the page exchanges this ticket
    with an HTTP route that creates the session and sets the cookie.
    """

    __tablename__ = "sign_in_ticket"

    id: int | None = Field(default=None, primary_key=True)
    ticket_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    expires_at: datetime


class SignInFailure(SQLModel, table=True):
    """A failed sign-in, kept for throttling by email and by IP address."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (
        Index("ix_sign_in_failure_email_at", "email", "created_at"),
        Index("ix_sign_in_failure_ip_at", "ip_address", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    ip_address: str = Field(max_length=64)
    created_at: datetime


class Conversation(SQLModel, table=True):
    """A thread between two or more members.

    `direct_key` ("<low user id>:<high user id>") is set only for one-to-one
    conversations; its unique index makes a second 1:1 between the same two
    people impossible even under concurrent creation.
    """

    __tablename__ = "conversation"

    id: int | None = Field(default=None, primary_key=True)
    direct_key: str | None = Field(default=None, max_length=64, unique=True)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime
    last_message_id: int | None = Field(default=None)
    last_activity_at: datetime


class ConversationMember(SQLModel, table=True):
    """Membership, with the member's read position in the conversation."""

    __tablename__ = "conversation_member"

    conversation_id: int = Field(
        foreign_key="conversation.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True, ondelete="CASCADE")
    joined_at: datetime
    last_read_message_id: int = Field(default=0)


class Message(SQLModel, table=True):
    """A message. Its id is the server's order of the conversation."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_message_id", name="uq_message_sender_client_id"),
        Index("ix_message_conversation_id_id", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE")
    sender_id: int = Field(foreign_key="user.id")
    body: str = Field(sa_column=Column(Text, nullable=False))
    client_message_id: str = Field(max_length=64)
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
