"""Conversations and messages. Every read and write checks membership first.

A conversation the caller is not a member of raises the same `NotFound` as one
that does not exist, so ids reveal nothing.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    TextClause,
    bindparam,
    case,
    func,
    insert,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from chat_app.clock import utcnow
from chat_app.db import run_and_commit_in_one_trip
from chat_app.domain import sessions
from chat_app.domain.accounts import normalize_email
from chat_app.domain.errors import Conflict, InvalidInput, NotFound
from chat_app.models import Conversation, ConversationMember, Message, User

MESSAGE_MAX_LENGTH = 10_000
PAGE_SIZE = 50
PAGE_SIZE_MAX = 200
PREVIEW_LENGTH = 120
MAX_MEMBERS = 50
_CLIENT_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Line breaks and tabs are text; other control characters (NUL above all,
# which PostgreSQL cannot store) are not.
_FORBIDDEN_IN_BODY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, kw_only=True)
class Member:
    """A member as others see them."""

    id: int
    name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class MessageView:
    """A stored message with its sender's name."""

    id: int
    conversation_id: int
    sender_id: int
    sender_name: str
    body: str
    client_message_id: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ConversationSummary:
    """One row of a user's conversation list."""

    id: int
    title: str
    is_group: bool
    members: list[Member]
    last_message_id: int
    last_message_preview: str
    last_message_sender_id: int | None
    last_activity_at: datetime
    unread_count: int
    last_read_message_id: int


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """The outcome of `send_message`."""

    message: MessageView
    created: bool
    member_ids: list[int]
    # The message just before this one in the conversation (0 for the first):
    # a tab holding it can show this one without asking the database.
    previous_message_id: int = 0
    # Each member's unread count right after this message was stored, and the
    # read position it was counted from: a tab compares these with what it shows
    # to tell an older count from a newer one when pushes arrive out of order.
    unread_by_member: dict[int, int] = field(default_factory=dict)
    read_position_by_member: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ReadPosition:
    """Where a member has read up to in a conversation, and what is left unread."""

    user_id: int
    conversation_id: int
    last_read_message_id: int
    unread_count: int
    # The conversation's newest message when the count was taken.
    newest_message_id: int


def _not_found() -> NotFound:
    return NotFound("Conversation not found", code="CONVERSATION_NOT_FOUND")


def _membership(*, session: Session, user_id: int, conversation_id: int) -> ConversationMember:
    member = session.get(ConversationMember, (conversation_id, user_id))
    if member is None:
        raise _not_found()
    return member


_IS_MEMBER = select(ConversationMember.user_id).where(
    ConversationMember.conversation_id == bindparam("cid"),
    ConversationMember.user_id == bindparam("uid"),
)


def _require_member(*, session: Session, user_id: int, conversation_id: int) -> None:
    """Like `_membership`, for a caller that needs no more than the check (one plain read)."""
    ids = {"cid": conversation_id, "uid": user_id}
    if session.connection().execute(_IS_MEMBER, ids).first() is None:
        raise _not_found()


def member_ids(*, session: Session, conversation_id: int) -> list[int]:
    """Return the ids of a conversation's members."""
    return list(
        session.exec(
            select(ConversationMember.user_id).where(
                ConversationMember.conversation_id == conversation_id
            )
        )
    )


def start_conversation(*, session: Session, creator_id: int, emails: list[str]) -> tuple[int, bool]:
    """Start a conversation with the people behind `emails`, or reopen the 1:1.

    Args:
        session: The database session.
        creator_id: The signed-in user.
        emails: One address for a 1:1, several for a group.

    Returns:
        (conversation id, True if it was created now).

    Raises:
        InvalidInput: No address, a malformed one, only one's own, or too many.
        NotFound: An address without an account ("No user with that email").
    """
    creator = session.get(User, creator_id)
    if creator is None:
        raise _not_found()
    wanted = []
    for raw in emails or []:
        email = normalize_email(raw)
        if email not in wanted:
            wanted.append(email)
    others = [email for email in wanted if email != creator.email]
    if not wanted:
        raise InvalidInput("Enter at least one email address", code="INVALID_EMAIL", field="emails")
    if not others:
        raise InvalidInput(
            "You can't start a conversation with yourself", code="OWN_EMAIL", field="emails"
        )
    if len(others) + 1 > MAX_MEMBERS:
        raise InvalidInput(f"A conversation can have at most {MAX_MEMBERS} members", field="emails")
    users = list(session.exec(select(User).where(col(User.email).in_(others))))
    found = {user.email for user in users}
    missing = [email for email in others if email not in found]
    if missing:
        raise NotFound(f"No user with that email: {', '.join(missing)}", code="USER_NOT_FOUND")
    member_ids_ = sorted({creator_id, *(user.id for user in users)})
    direct_key = f"{member_ids_[0]}:{member_ids_[1]}" if len(member_ids_) == 2 else None
    if direct_key is not None:
        existing = _direct_conversation_id(session=session, direct_key=direct_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    conversation = Conversation(
        direct_key=direct_key, created_by_id=creator_id, created_at=now, last_activity_at=now
    )
    session.add(conversation)
    try:
        session.flush()
    except IntegrityError:  # the same 1:1 was created concurrently
        session.rollback()
        existing = _direct_conversation_id(session=session, direct_key=direct_key or "")
        if existing is None:
            raise
        return existing, False
    for user_id in member_ids_:
        session.add(
            ConversationMember(conversation_id=conversation.id, user_id=user_id, joined_at=now)
        )
    session.commit()
    return conversation.id, True


def _direct_conversation_id(*, session: Session, direct_key: str) -> int | None:
    return session.exec(
        select(Conversation.id).where(Conversation.direct_key == direct_key)
    ).first()


# The messages a member has not read: newer than their read position, sent by
# someone else, not deleted. Every unread count joins on this.
_UNREAD_BY_THE_MEMBER = (
    (Message.conversation_id == ConversationMember.conversation_id)
    & (Message.id > ConversationMember.last_read_message_id)
    & (Message.sender_id != ConversationMember.user_id)
    & col(Message.deleted_at).is_(None)
)


def list_conversations(
    *, session: Session, user_id: int, conversation_ids: list[int] | None = None
) -> list[ConversationSummary]:
    """Return the user's conversations, most recent activity first.

    Four queries whatever the number of conversations.

    Args:
        session: The database session.
        user_id: The signed-in user.
        conversation_ids: Only these (still only where the user is a member).
    """
    query = (
        select(Conversation, ConversationMember.last_read_message_id)
        .join(ConversationMember, ConversationMember.conversation_id == Conversation.id)
        .where(ConversationMember.user_id == user_id)
    )
    if conversation_ids is not None:
        query = query.where(col(Conversation.id).in_(conversation_ids))
    rows = list(session.exec(query))
    if not rows:
        return []
    ids = [conversation.id for conversation, _ in rows]
    members: dict[int, list[Member]] = {}
    for conversation_id, user in session.exec(
        select(ConversationMember.conversation_id, User)
        .join(User, User.id == ConversationMember.user_id)
        .where(col(ConversationMember.conversation_id).in_(ids))
        .order_by(User.name, User.id)
    ):
        members.setdefault(conversation_id, []).append(
            Member(id=user.id, name=user.name, email=user.email)
        )
    last_ids = [c.last_message_id for c, _ in rows if c.last_message_id]
    last_messages = (
        {
            message.id: message
            for message in session.exec(select(Message).where(col(Message.id).in_(last_ids)))
        }
        if last_ids
        else {}
    )
    unread = {
        conversation_id: count
        for _, conversation_id, _, count, _ in _run(
            session, _READ_POSITIONS, {"pairs": [(id_, user_id) for id_ in ids]}
        )
    }
    summaries = []
    for conversation, last_read in rows:
        everyone = members.get(conversation.id, [])
        others = [member for member in everyone if member.id != user_id]
        last = last_messages.get(conversation.last_message_id or 0)
        summaries.append(
            ConversationSummary(
                id=conversation.id,
                title=", ".join(member.name for member in others) or "Just you",
                is_group=conversation.direct_key is None,
                members=everyone,
                last_message_id=conversation.last_message_id or 0,
                last_message_preview=preview(last.body) if last else "",
                last_message_sender_id=last.sender_id if last else None,
                last_activity_at=conversation.last_activity_at,
                unread_count=unread.get(conversation.id, 0),
                last_read_message_id=last_read,
            )
        )
    summaries.sort(key=lambda s: (s.last_activity_at, s.id), reverse=True)
    return summaries


def preview(body: str) -> str:
    """A message body shortened to one line for the conversation list."""
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def get_conversation(
    *, session: Session, user_id: int, conversation_id: int
) -> ConversationSummary:
    """Return one of the user's conversations.

    Raises:
        NotFound: If it does not exist or the user is not a member.
    """
    found = list_conversations(session=session, user_id=user_id, conversation_ids=[conversation_id])
    if not found:
        raise _not_found()
    return found[0]


def list_messages(
    *,
    session: Session,
    user_id: int,
    conversation_id: int,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[MessageView]:
    """Return a page of messages in ascending id order (keyset paging, never OFFSET).

    Args:
        session: The database session.
        user_id: The signed-in user; must be a member.
        conversation_id: The conversation.
        before: Only messages with a smaller id: the page just older than this.
        after: Only messages with a larger id (catching up), oldest first.
        limit: At most this many (1 to 200).

    Raises:
        NotFound: If the user is not a member.
        InvalidInput: If `limit` is out of range.
    """
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}", field="limit")
    _require_member(session=session, user_id=user_id, conversation_id=conversation_id)
    rows = (
        session.connection()
        .execute(
            _message_page(before=before is not None, after=after is not None),
            {"cid": conversation_id, "before": before, "after": after, "limit": limit},
        )
        .all()
    )
    if after is None:
        rows.reverse()  # read newest first, so the page ends at the newest
    return [
        MessageView(
            id=row.id,
            conversation_id=row.conversation_id,
            sender_id=row.sender_id,
            sender_name=row.name,
            body=row.body,
            client_message_id=row.client_message_id,
            created_at=row.created_at,
        )
        for row in rows
    ]


# A page of messages is read past the ORM: loading them as Message objects took
# most of its time, on every page opened and every tab catching up.
_MESSAGE_VIEWS = (
    select(
        Message.id,
        Message.conversation_id,
        Message.sender_id,
        User.name,
        Message.body,
        Message.client_message_id,
        Message.created_at,
    )
    .join(User, User.id == Message.sender_id)
    .where(Message.conversation_id == bindparam("cid"))
)


@functools.cache
def _message_page(*, before: bool, after: bool) -> Any:
    """The statement for a page: older than `before` and/or newer than `after`, if given."""
    query = _MESSAGE_VIEWS
    if before:
        query = query.where(Message.id < bindparam("before"))
    if after:  # catching up: the oldest first
        return (
            query.where(Message.id > bindparam("after"))
            .order_by(Message.id.asc())
            .limit(bindparam("limit"))
        )
    return query.order_by(Message.id.desc()).limit(bindparam("limit"))


def _view(message: Message, sender_name: str) -> MessageView:
    return MessageView(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        sender_name=sender_name,
        body=message.body,
        client_message_id=message.client_message_id,
        created_at=message.created_at,
    )


def validate_message_body(body: str) -> str:
    """Return the body to store (outer whitespace trimmed).

    Raises:
        InvalidInput: If it is empty or longer than 10,000 characters.
    """
    body = (body or "").strip()
    if not body:
        raise InvalidInput("A message can't be empty", code="EMPTY_MESSAGE", field="content")
    if _FORBIDDEN_IN_BODY.search(body):
        raise InvalidInput(
            "A message can't contain control characters", code="INVALID_CHARACTERS", field="content"
        )
    if len(body) > MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            f"A message can be at most {MESSAGE_MAX_LENGTH:,} characters "
            f"(this one has {len(body):,})",
            code="MESSAGE_TOO_LONG",
            field="content",
        )
    return body


def validate_client_message_id(client_message_id: str) -> str:
    """Check the sender's id for a message (1 to 64 of A-Z a-z 0-9 - _).

    Raises:
        InvalidInput: If it is malformed.
    """
    if not _CLIENT_MESSAGE_ID.match(client_message_id or ""):
        raise InvalidInput(
            "client_message_id must be 1 to 64 letters, digits, '-' or '_'",
            code="INVALID_CLIENT_MESSAGE_ID",
            field="client_message_id",
        )
    return client_message_id


def _run(session: Session, statement: Any, params: dict[str, Any]) -> Any:
    """Execute a prebuilt Core statement in the session's transaction, past the ORM layer."""
    return session.connection().execute(statement, params)


# The statements of the send path, built once: building SQLAlchemy expressions
# costs more Python time than SQLite spends running them.
# Locks the conversation's row until the send commits (PostgreSQL; SQLite's one
# writer at a time does the same), so a conversation's messages take their ids in
# the order they commit. Otherwise a send that committed first with the higher id
# would count unread messages without a lower one still uncommitted, and the
# members' lists, which keep the count of the newest message, would show one too
# few.
_SENDER_NAME_IF_MEMBER = (
    select(User.name)
    .join(ConversationMember, ConversationMember.user_id == User.id)
    .join(Conversation, Conversation.id == ConversationMember.conversation_id)
    .where(
        ConversationMember.conversation_id == bindparam("cid"),
        ConversationMember.user_id == bindparam("uid"),
    )
    .with_for_update(of=Conversation, key_share=True)
)
# No RETURNING: SQLite hands the new id over with the insert (its last row id),
# where RETURNING would cost one more step, and one more wait for the GIL, while
# the database's only write lock is held. PostgreSQL still returns it.
_INSERT_MESSAGE = insert(Message)
_last_id = func.coalesce(Conversation.last_message_id, 0)
_MOVE_CONVERSATION_FORWARD = (
    update(Conversation)
    .where(Conversation.id == bindparam("cid"))
    .values(
        # Concurrent sends may commit out of id order: only ever move forward.
        last_message_id=case((_last_id < bindparam("mid"), bindparam("mid")), else_=_last_id),
        last_activity_at=bindparam("now"),
    )
)
_SENDER_HAS_READ_IT = (
    update(ConversationMember)
    .where(
        ConversationMember.conversation_id == bindparam("cid"),
        ConversationMember.user_id == bindparam("uid"),
        ConversationMember.last_read_message_id < bindparam("mid"),
    )
    .values(last_read_message_id=bindparam("mid"))
)
_UNREAD_BY_MEMBER = (
    select(
        ConversationMember.user_id,
        func.count(Message.id).label("unread"),
        ConversationMember.last_read_message_id,
    )
    .select_from(ConversationMember)
    .outerjoin(Message, _UNREAD_BY_THE_MEMBER)
    .where(ConversationMember.conversation_id == bindparam("cid"))
    .group_by(ConversationMember.user_id, ConversationMember.last_read_message_id)
)
# The send's answer in one statement: each member's unread count and read
# position, and the id of the message before the new one (on every row).
_UNREAD_BY_MEMBER_AND_PREVIOUS_ID = _UNREAD_BY_MEMBER.add_columns(
    select(func.max(Message.id))
    .where(Message.conversation_id == bindparam("cid"), Message.id < bindparam("mid"))
    .correlate(None)  # the outer query joins messages too; this one reads its own
    .scalar_subquery()
)

# PostgreSQL: the insert, both moves forward and the counts above in one
# statement, so one round trip instead of four. On a loaded two-core machine
# each round trip waits for the server's process and then for this thread's turn
# at the GIL (bench/HISTORY.md). Every part of a statement reads one snapshot,
# taken after the conversation's lock (the statement before): the new message
# is not in it, so the counts add it, and the sender has read it. The lock, this
# statement and the commit go to the server together (`run_and_commit_in_one_trip`),
# so the insert checks membership itself instead of waiting for the lock's answer.
_NEW_MESSAGE = (
    postgresql_insert(Message)
    .from_select(
        ["conversation_id", "sender_id", "body", "client_message_id", "created_at"],
        select(
            *(
                bindparam(name, type_=column.type)
                for name, column in (
                    ("cid", Message.__table__.c.conversation_id),
                    ("uid", Message.__table__.c.sender_id),
                    ("body", Message.__table__.c.body),
                    ("client_message_id", Message.__table__.c.client_message_id),
                    ("now", Message.__table__.c.created_at),
                )
            )
        ).where(
            select(ConversationMember.user_id)
            .where(
                ConversationMember.conversation_id == bindparam("cid"),
                ConversationMember.user_id == bindparam("uid"),
            )
            .exists()
        ),
    )
    .on_conflict_do_nothing(constraint="uq_message_sender_client_id")  # a retried send
    .returning(Message.id)
    .cte("new_message")
)
_last_id_before = func.coalesce(Conversation.last_message_id, 0)
# Read as a value rather than joined in (UPDATE … FROM new_message, which
# SQLAlchemy's linter reports as a cartesian product). The update's EXISTS keeps
# a retried send, which stores nothing, from moving the conversation.
_new_message_id = select(_NEW_MESSAGE.c.id).scalar_subquery()
_counted_before = _UNREAD_BY_MEMBER.subquery("counted_before")
_is_sender = _counted_before.c.user_id == bindparam("uid")
_STORE_AND_COUNT_AT_ONCE = (
    select(
        _NEW_MESSAGE.c.id,
        _counted_before.c.user_id,
        case((_is_sender, 0), else_=_counted_before.c.unread + 1),
        case((_is_sender, _NEW_MESSAGE.c.id), else_=_counted_before.c.last_read_message_id),
        select(func.max(Message.id))
        .where(Message.conversation_id == bindparam("cid"))
        .correlate(None)
        .scalar_subquery(),
    )
    .select_from(_NEW_MESSAGE)
    .join(_counted_before, true())
    .add_cte(
        update(Conversation)
        .where(Conversation.id == bindparam("cid"), select(_NEW_MESSAGE.c.id).exists())
        .values(
            last_message_id=case(
                (_last_id_before < _new_message_id, _new_message_id), else_=_last_id_before
            ),
            last_activity_at=bindparam("now"),
        )
        .cte("moved_forward"),
        update(ConversationMember)
        .where(
            ConversationMember.conversation_id == bindparam("cid"),
            ConversationMember.user_id == bindparam("uid"),
            ConversationMember.last_read_message_id < _NEW_MESSAGE.c.id,
        )
        .values(last_read_message_id=_NEW_MESSAGE.c.id)
        .cte("sender_has_read_it"),
    )
)


def _store_and_count(session: Session, stored: dict[str, Any]) -> tuple[int, list[Row]] | None:
    """SQLite: store a message, move its conversation and the sender's read position forward, count.

    Four statements, which cost SQLite no round trip (PostgreSQL does all this in
    `_STORE_AND_COUNT_AT_ONCE`).

    Returns:
        The new message's id and, per member, (user id, unread count, read
        position, id of the message before the new one); None if the sender
        already stored a message with this client id.
    """
    connection = session.connection()
    try:
        message_id = connection.execute(
            _INSERT_MESSAGE,
            {
                "conversation_id": stored["cid"],
                "sender_id": stored["uid"],
                "body": stored["body"],
                "client_message_id": stored["client_message_id"],
                "created_at": stored["now"],
            },
        ).inserted_primary_key[0]
    except IntegrityError:  # a retry of a send that was stored (the unique client id)
        session.rollback()
        return None
    moved = {**stored, "mid": message_id}
    connection.execute(_MOVE_CONVERSATION_FORWARD, moved)
    connection.execute(_SENDER_HAS_READ_IT, moved)
    # Read before the commit, under the conversation's lock (SQLite: its one
    # writer): every earlier message of it is committed and no later one can be, so
    # this reads what a read after the commit would, in the same transaction.
    return message_id, connection.execute(_UNREAD_BY_MEMBER_AND_PREVIOUS_ID, moved).all()


def _lock_store_count_and_commit(
    session: Session, values: dict[str, Any]
) -> tuple[str | None, tuple[int, list[tuple]] | None]:
    """PostgreSQL: lock, store and count (`_STORE_AND_COUNT_AT_ONCE`), and commit, in one trip.

    Returns:
        The sender's name (None if they are not a member, and then nothing was
        stored), and what `_store_and_count` returns.
    """
    locked, rows = run_and_commit_in_one_trip(
        session, [(_SENDER_NAME_IF_MEMBER, values), (_STORE_AND_COUNT_AT_ONCE, values)]
    )
    sender_name = locked[0][0] if locked else None
    return sender_name, ((rows[0][0], [row[1:] for row in rows]) if rows else None)


def send_message(
    *,
    session: Session,
    user_id: int,
    conversation_id: int,
    body: str,
    client_message_id: str,
) -> SendResult:
    """Store a message once per (sender, client_message_id), however often it is retried.

    Also marks the conversation read up to it for the sender.

    Raises:
        InvalidInput: Empty or too long body, or a malformed client id.
        NotFound: If the user is not a member.
        Conflict: If the client id was already used in another conversation.
    """
    body = validate_message_body(body)
    validate_client_message_id(client_message_id)
    ids = {"cid": conversation_id, "uid": user_id}
    now = utcnow()
    values = {**ids, "body": body, "client_message_id": client_message_id, "now": now}
    # In one trip the commit leaves before the membership check comes back, so
    # only when nothing else waits to commit (a session's slide, once a minute).
    if session.get_bind().dialect.name == "postgresql" and not sessions.slide_uncommitted(session):
        sender_name, stored = _lock_store_count_and_commit(session, values)
    else:
        sender_name = _run(session, _SENDER_NAME_IF_MEMBER, ids).scalar()
        stored = _store_and_count(session, values) if sender_name is not None else None
    if sender_name is None:
        raise _not_found()
    if stored is None:
        return _resent(
            session=session,
            user_id=user_id,
            conversation_id=conversation_id,
            client_message_id=client_message_id,
            sender_name=sender_name,
        )
    message_id, counts = stored
    if session.in_transaction():
        session.commit()
    unread = {user: count for user, count, _, _ in counts}
    previous = counts[0][3] if counts else 0
    return SendResult(
        message=MessageView(
            id=message_id,
            conversation_id=conversation_id,
            sender_id=user_id,
            sender_name=sender_name,
            body=body,
            client_message_id=client_message_id,
            created_at=now,
        ),
        created=True,
        member_ids=sorted(unread),
        previous_message_id=previous or 0,
        unread_by_member=unread,
        read_position_by_member={user: position for user, _, position, _ in counts},
    )


def _resent(
    *,
    session: Session,
    user_id: int,
    conversation_id: int,
    client_message_id: str,
    sender_name: str,
) -> SendResult:
    existing = _by_client_id(session=session, user_id=user_id, client_message_id=client_message_id)
    if existing is None:
        raise RuntimeError("the message's insert failed, yet it is not stored")
    if existing.conversation_id != conversation_id:
        raise Conflict(
            "client_message_id was already used for another conversation",
            code="DUPLICATE_CLIENT_MESSAGE_ID",
        )
    return SendResult(
        message=_view(existing, sender_name),
        created=False,
        member_ids=member_ids(session=session, conversation_id=conversation_id),
    )


def _by_client_id(*, session: Session, user_id: int, client_message_id: str) -> Message | None:
    return session.exec(
        select(Message).where(
            Message.sender_id == user_id, Message.client_message_id == client_message_id
        )
    ).first()


def unread_by_member(*, session: Session, conversation_id: int) -> dict[int, int]:
    """Every member's unread count in one conversation, derived from their read positions."""
    counts = _run(session, _UNREAD_BY_MEMBER, {"cid": conversation_id})
    return {user: count for user, count, _ in counts}


def conversation_member_ids(*, session: Session, user_id: int, conversation_id: int) -> list[int]:
    """Return the members of a conversation the user belongs to.

    Raises:
        NotFound: If the user is not a member.
    """
    _require_member(session=session, user_id=user_id, conversation_id=conversation_id)
    return member_ids(session=session, conversation_id=conversation_id)


_NEWEST_POSSIBLE_ID = 2**31 - 1  # ids are 32-bit integers
_MARKS_PER_STATEMENT = 1_000  # pairs bind 2 values each, well below SQLite's 32,766
# The memberships named by a `pairs` parameter of (conversation id, user id).
_MEMBERSHIPS_IN_PAIRS = tuple_(ConversationMember.conversation_id, ConversationMember.user_id).in_(
    bindparam("pairs", expanding=True)
)


def _with_marks(
    session: Session, sql: str, marks: dict[tuple[int, int], int]
) -> tuple[TextClause, dict[str, str]]:
    """`sql` reading a table `marks (cid, uid, target)` of these marks; and its parameters.

    The marks travel as one JSON parameter, so the statement's text is the same
    whatever their number, and SQLAlchemy and the driver prepare it once. Built
    from SQLAlchemy's constructs with a VALUES list instead, it could not be
    cached: each flush compiled it anew, about 5 ms of Python for 140 marks, nine
    times what SQLite then took to run it (and psycopg parsed its 400 placeholders
    on every run, 3 ms more).
    """
    dialect = session.get_bind().dialect.name
    marks_json = json.dumps([[cid, uid, target] for (cid, uid), target in marks.items()])
    return _statement_with_marks(dialect, sql), {"marks": marks_json}


_MARKS_TABLE = {
    "sqlite": (
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
        "json_extract(value, '$[2]') FROM json_each(:marks)"
    ),
    "postgresql": (
        "SELECT CAST(mark ->> 0 AS INTEGER), CAST(mark ->> 1 AS INTEGER), "
        "CAST(mark ->> 2 AS INTEGER) FROM json_array_elements(CAST(:marks AS JSON)) AS mark"
    ),
}


@functools.lru_cache(maxsize=8)
def _statement_with_marks(dialect: str, sql: str) -> TextClause:
    return text(f"WITH marks (cid, uid, target) AS ({_MARKS_TABLE[dialect]}) {sql}")


# Each marked membership's read position and its conversation's newest message.
_CURRENT_READ_POSITIONS = (
    "SELECT conversation_member.conversation_id, conversation_member.user_id, "
    "conversation_member.last_read_message_id, COALESCE(conversation.last_message_id, 0) "
    "FROM marks JOIN conversation_member ON conversation_member.conversation_id = marks.cid "
    "AND conversation_member.user_id = marks.uid "
    "JOIN conversation ON conversation.id = marks.cid"
)
# Moves each marked read position up to its target, never back.
_ADVANCE_READ_POSITIONS = (
    "UPDATE conversation_member SET last_read_message_id = marks.target FROM marks "
    "WHERE conversation_member.conversation_id = marks.cid "
    "AND conversation_member.user_id = marks.uid "
    "AND conversation_member.last_read_message_id < marks.target"
)

_READ_POSITIONS = (
    select(
        ConversationMember.user_id,
        ConversationMember.conversation_id,
        ConversationMember.last_read_message_id,
        func.count(Message.id),
        func.coalesce(Conversation.last_message_id, 0),
    )
    .select_from(ConversationMember)
    .join(Conversation, Conversation.id == ConversationMember.conversation_id)
    .outerjoin(Message, _UNREAD_BY_THE_MEMBER)
    .where(_MEMBERSHIPS_IN_PAIRS)
    .group_by(
        ConversationMember.user_id,
        ConversationMember.conversation_id,
        ConversationMember.last_read_message_id,
        Conversation.last_message_id,
    )
)


def mark_read_many(
    *, session: Session, marks: Iterable[tuple[int, int, int]]
) -> list[ReadPosition]:
    """Move several read positions forward (never back), in one statement per 1,000 marks.

    Args:
        session: The database session.
        marks: (user id, conversation id, read up to this message id) triples.
            A mark for a conversation the user is no longer in is ignored.

    Returns:
        The positions that moved, each with the unread count left behind it.
    """
    wanted: dict[tuple[int, int], int] = {}
    for user_id, conversation_id, up_to_message_id in marks:
        key = (conversation_id, user_id)
        wanted[key] = max(wanted.get(key, 0), min(up_to_message_id, _NEWEST_POSSIBLE_ID))
    # Work out which positions move before writing, so the write is a single
    # statement: a database thread gives the GIL up between statements and,
    # next to a busy event loop, waits for it again while holding SQLite's
    # only write lock.
    targets: dict[tuple[int, int], int] = {}
    newest_by_conversation: dict[int, int] = {}
    for chunk in _chunks(list(wanted), _MARKS_PER_STATEMENT):
        current = _with_marks(session, _CURRENT_READ_POSITIONS, {key: wanted[key] for key in chunk})
        for cid, uid, position, newest in _run(session, *current):
            newest_by_conversation[cid] = newest
            target = min(wanted[(cid, uid)], newest)
            if position < target:
                targets[(cid, uid)] = target
    if not targets:
        return []
    for chunk in _chunks(list(targets), _MARKS_PER_STATEMENT):
        _run(
            session,
            *_with_marks(session, _ADVANCE_READ_POSITIONS, {key: targets[key] for key in chunk}),
        )
    session.commit()
    # A position moved up to its conversation's newest message has nothing unread
    # behind it: only the others are counted.
    caught_up = [
        ReadPosition(
            user_id=uid,
            conversation_id=cid,
            last_read_message_id=target,
            unread_count=0,
            newest_message_id=target,
        )
        for (cid, uid), target in targets.items()
        if target == newest_by_conversation[cid]
    ]
    behind = [key for key, target in targets.items() if target < newest_by_conversation[key[0]]]
    return caught_up + [
        ReadPosition(
            user_id=user_id,
            conversation_id=conversation_id,
            last_read_message_id=position,
            unread_count=unread,
            newest_message_id=newest,
        )
        for chunk in _chunks(behind, _MARKS_PER_STATEMENT)
        for user_id, conversation_id, position, unread, newest in _run(
            session, _READ_POSITIONS, {"pairs": chunk}
        )
    ]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mark_read(
    *, session: Session, user_id: int, conversation_id: int, up_to_message_id: int | None = None
) -> tuple[int, bool]:
    """Move the user's read position forward (never back), to the newest message by default.

    Returns:
        The read position after the call, and whether it moved.

    Raises:
        NotFound: If the user is not a member.
    """
    member = _membership(session=session, user_id=user_id, conversation_id=conversation_id)
    up_to = _NEWEST_POSSIBLE_ID if up_to_message_id is None else up_to_message_id
    moved = mark_read_many(session=session, marks=[(user_id, conversation_id, up_to)])
    if moved:
        return moved[0].last_read_message_id, True
    return member.last_read_message_id, False
