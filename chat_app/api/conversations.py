"""`/api/conversations`: the same conversations and messages as the UI, for scripts and bots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chat_app.api.common import Caller, caller, require_auth
from chat_app.clock import isoformat
from chat_app.db import run_in_session
from chat_app.domain import conversations
from chat_app.domain.conversations import ConversationSummary, MessageView
from chat_app.domain.sessions import Authenticated
from chat_app.realtime import push, topics

router = APIRouter(prefix="/api/conversations", tags=["conversations"])

# The largest id the database can hold (a signed 64-bit integer): larger ones would
# overflow in the driver (a 500) instead of simply matching nothing.
_ID_MAX = 2**63 - 1
ConversationId = Annotated[int, Path(ge=1, le=_ID_MAX)]


class StartConversationBody(BaseModel):
    """POST /api/conversations."""

    emails: list[str] = Field(min_length=1, max_length=50)


class SendMessageBody(BaseModel):
    """POST /api/conversations/{id}/messages."""

    content: str = Field(max_length=100_000)
    client_message_id: str = Field(max_length=200)


def conversation_json(summary: ConversationSummary) -> dict:
    """A conversation as the API shows it."""
    return {
        "id": summary.id,
        "title": summary.title,
        "isGroup": summary.is_group,
        "members": [
            {"id": member.id, "name": member.name, "email": member.email}
            for member in summary.members
        ],
        "lastMessageId": summary.last_message_id or None,
        "lastMessagePreview": summary.last_message_preview,
        "lastActivityAt": isoformat(summary.last_activity_at),
        "unreadCount": summary.unread_count,
        "lastReadMessageId": summary.last_read_message_id,
    }


def message_json(view: MessageView) -> dict:
    """A message as the API shows it."""
    return {
        "id": view.id,
        "conversationId": view.conversation_id,
        "senderId": view.sender_id,
        "senderName": view.sender_name,
        "content": view.body,
        "clientMessageId": view.client_message_id,
        "createdAt": isoformat(view.created_at),
    }


@router.get("")
async def list_conversations(reader: Caller = Depends(caller)):
    """The caller's conversations, most recent activity first."""
    found = await reader.run(conversations.list_conversations)
    return [conversation_json(summary) for summary in found]


@router.post("")
async def start_conversation(
    body: StartConversationBody, authenticated: Authenticated = Depends(require_auth)
):
    """Start a conversation with these emails (or get the existing 1:1): 201 or 200."""
    user_id = authenticated.user.id
    conversation_id, created = await run_in_session(
        conversations.start_conversation, creator_id=user_id, emails=body.emails
    )
    summary = await run_in_session(
        conversations.get_conversation, user_id=user_id, conversation_id=conversation_id
    )
    if created:
        push.publish(
            [member.id for member in summary.members],
            topics.CONVERSATION_CHANGED,
            {"conversation_id": conversation_id},
        )
    return JSONResponse(conversation_json(summary), status_code=201 if created else 200)


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: ConversationId,
    before: int | None = Query(default=None, ge=1, le=_ID_MAX),
    limit: int = Query(default=conversations.PAGE_SIZE, ge=1, le=conversations.PAGE_SIZE_MAX),
    reader: Caller = Depends(caller),
):
    """A page of messages, oldest first; `before` pages back by message id."""
    views = await reader.run(
        conversations.list_messages,
        conversation_id=conversation_id,
        before=before,
        limit=limit,
    )
    return {
        "messages": [message_json(view) for view in views],
        "nextBefore": views[0].id if len(views) == limit else None,
    }


@router.post("/{conversation_id}/messages")
async def send_message(
    conversation_id: ConversationId, body: SendMessageBody, sender: Caller = Depends(caller)
):
    """Send a message: 201 when stored, 200 when this client_message_id was already stored."""
    result = await sender.run(
        conversations.send_message,
        conversation_id=conversation_id,
        body=body.content,
        client_message_id=body.client_message_id,
    )
    if result.created:
        push.publish(
            result.member_ids, topics.CONVERSATION_CHANGED, topics.new_message_payload(result)
        )
    return JSONResponse(message_json(result.message), status_code=201 if result.created else 200)
