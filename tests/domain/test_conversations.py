"""Conversation service: starting threads, membership, messages, paging, unread counts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, update
from sqlmodel import Session, func, select

from chat_app.clock import utcnow
from chat_app.domain import conversations as conv
from chat_app.domain.errors import Conflict, InvalidInput, NotFound
from chat_app.models import Conversation, ConversationMember, Message, User
from tests.domain.support import TickingClock, count_statements, make_user

MISSING_ID = 987_654


@pytest.fixture
def cy(session: Session) -> User:
    return make_user(session, "Cy")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> TickingClock:
    """Make the conversation service's clock tick one second per reading."""
    ticking = TickingClock(start=utcnow())
    monkeypatch.setattr(conv, "utcnow", ticking)
    return ticking


def start(session: Session, creator: User, *others: User | str) -> int:
    emails = [o if isinstance(o, str) else o.email for o in others]
    conversation_id, _ = conv.start_conversation(
        session=session, creator_id=creator.id, emails=emails
    )
    return conversation_id


_counter = iter(range(10**9))


def send(
    session: Session,
    user: User,
    conversation_id: int,
    body: str = "hi",
    client_message_id: str | None = None,
) -> conv.SendResult:
    return conv.send_message(
        session=session,
        user_id=user.id,
        conversation_id=conversation_id,
        body=body,
        client_message_id=client_message_id or f"c{next(_counter)}",
    )


def summary(session: Session, user: User, conversation_id: int) -> conv.ConversationSummary:
    return conv.get_conversation(session=session, user_id=user.id, conversation_id=conversation_id)


def unread(session: Session, user: User, conversation_id: int) -> int:
    return summary(session, user, conversation_id).unread_count


def mark_read(
    session: Session, user: User, conversation_id: int, up_to_message_id: int | None = None
) -> tuple[int, bool]:
    return conv.mark_read(
        session=session,
        user_id=user.id,
        conversation_id=conversation_id,
        up_to_message_id=up_to_message_id,
    )


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


# --- starting conversations ----------------------------------------------------------


def test_one_to_one_is_idempotent_in_both_directions(
    session: Session, ada: User, bob: User
) -> None:
    first, created = conv.start_conversation(session=session, creator_id=ada.id, emails=[bob.email])
    again, created_again = conv.start_conversation(
        session=session, creator_id=ada.id, emails=["  BOB@example.com "]
    )
    reverse, created_reverse = conv.start_conversation(
        session=session, creator_id=bob.id, emails=[ada.email]
    )
    with_self, created_with_self = conv.start_conversation(
        session=session, creator_id=ada.id, emails=[ada.email, bob.email, "Bob@Example.com"]
    )

    assert created is True
    assert (created_again, created_reverse, created_with_self) == (False, False, False)
    assert first == again == reverse == with_self
    assert count(session, Conversation) == 1
    assert sorted(conv.member_ids(session=session, conversation_id=first)) == sorted(
        [ada.id, bob.id]
    )
    assert summary(session, ada, first).is_group is False
    assert summary(session, bob, first).title == "Ada"


def test_own_email_only_is_rejected(session: Session, ada: User) -> None:
    with pytest.raises(InvalidInput) as caught:
        conv.start_conversation(session=session, creator_id=ada.id, emails=[" ADA@example.com"])

    assert caught.value.code == "OWN_EMAIL"
    assert caught.value.field == "emails"
    assert count(session, Conversation) == 0


def test_unknown_email_is_not_found(session: Session, ada: User, bob: User) -> None:
    with pytest.raises(NotFound) as caught:
        conv.start_conversation(
            session=session, creator_id=ada.id, emails=[bob.email, "nobody@example.com"]
        )

    assert caught.value.code == "USER_NOT_FOUND"
    assert "nobody@example.com" in caught.value.message
    assert count(session, Conversation) == 0
    assert count(session, ConversationMember) == 0


@pytest.mark.parametrize("emails", [["not an email"], ["bob@example"], [""], []])
def test_invalid_or_no_email_is_invalid_input(
    session: Session, ada: User, bob: User, emails: list[str]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        conv.start_conversation(session=session, creator_id=ada.id, emails=emails)

    assert caught.value.code == "INVALID_EMAIL"
    assert count(session, Conversation) == 0


def test_member_limit(session: Session, ada: User) -> None:
    too_many = [f"user{i}@example.com" for i in range(50)]  # 50 others + the creator
    with pytest.raises(InvalidInput):
        conv.start_conversation(session=session, creator_id=ada.id, emails=too_many)
    # 49 others + the creator is allowed (and fails only because nobody exists).
    with pytest.raises(NotFound):
        conv.start_conversation(session=session, creator_id=ada.id, emails=too_many[:49])


def test_group_of_three_and_a_second_identical_group(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    first, created = conv.start_conversation(
        session=session, creator_id=ada.id, emails=[bob.email, cy.email]
    )
    second, created_second = conv.start_conversation(
        session=session, creator_id=ada.id, emails=[cy.email, bob.email]
    )

    assert created is True and created_second is True
    assert first != second
    for conversation_id in (first, second):
        group = summary(session, ada, conversation_id)
        assert group.is_group is True
        assert sorted(m.id for m in group.members) == sorted([ada.id, bob.id, cy.id])
        assert group.title == "Bob, Cy"
    assert summary(session, cy, first).title == "Ada, Bob"
    # A 1:1 between two of them is still a separate, direct conversation.
    direct = start(session, ada, bob)
    assert direct not in (first, second)
    assert summary(session, ada, direct).is_group is False


# --- membership ------------------------------------------------------------------------


def _call_as(session: Session, user: User, conversation_id: int) -> dict[str, NotFound]:
    calls = {
        "list_messages": lambda: conv.list_messages(
            session=session, user_id=user.id, conversation_id=conversation_id
        ),
        "send_message": lambda: conv.send_message(
            session=session,
            user_id=user.id,
            conversation_id=conversation_id,
            body="let me in",
            client_message_id=f"intruder-{conversation_id}",
        ),
        "mark_read": lambda: conv.mark_read(
            session=session, user_id=user.id, conversation_id=conversation_id
        ),
        "get_conversation": lambda: conv.get_conversation(
            session=session, user_id=user.id, conversation_id=conversation_id
        ),
    }
    errors = {}
    for name, call in calls.items():
        with pytest.raises(NotFound) as caught:
            call()
        errors[name] = caught.value
    return errors


def test_non_member_gets_the_same_not_found_as_a_missing_conversation(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    conversation_id = start(session, ada, bob)
    send(session, ada, conversation_id, "secret")

    as_outsider = _call_as(session, cy, conversation_id)
    as_missing = _call_as(session, cy, MISSING_ID)

    for name, error in as_outsider.items():
        assert (error.code, error.message) == (as_missing[name].code, as_missing[name].message), (
            name
        )
        assert error.code == "CONVERSATION_NOT_FOUND"
    assert count(session, Message) == 1
    assert conv.list_conversations(session=session, user_id=cy.id) == []
    assert (
        conv.list_conversations(session=session, user_id=cy.id, conversation_ids=[conversation_id])
        == []
    )


def test_conversation_member_ids_only_for_members(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    group = start(session, ada, bob, cy)
    direct = start(session, ada, bob)

    assert sorted(
        conv.conversation_member_ids(session=session, user_id=cy.id, conversation_id=group)
    ) == sorted([ada.id, bob.id, cy.id])
    with pytest.raises(NotFound) as outsider:
        conv.conversation_member_ids(session=session, user_id=cy.id, conversation_id=direct)
    with pytest.raises(NotFound) as missing:
        conv.conversation_member_ids(session=session, user_id=cy.id, conversation_id=MISSING_ID)
    assert (outsider.value.code, outsider.value.message) == (
        missing.value.code,
        missing.value.message,
    )


# --- sending ------------------------------------------------------------------------------


def test_send_message_stores_and_advances_the_conversation(
    session: Session, ada: User, bob: User
) -> None:
    conversation_id = start(session, ada, bob)

    result = send(session, ada, conversation_id, "  hello there \n", "client-1")

    assert result.created is True
    assert sorted(result.member_ids) == sorted([ada.id, bob.id])
    view = result.message
    assert (view.conversation_id, view.sender_id, view.sender_name) == (
        conversation_id,
        ada.id,
        "Ada",
    )
    assert (view.body, view.client_message_id) == ("hello there", "client-1")
    session.expire_all()
    stored = session.get(Message, view.id)
    assert stored.body == "hello there"
    assert session.get(Conversation, conversation_id).last_message_id == view.id
    assert session.get(ConversationMember, (conversation_id, ada.id)).last_read_message_id == (
        view.id
    )
    assert session.get(ConversationMember, (conversation_id, bob.id)).last_read_message_id == 0


def test_duplicate_client_message_id_is_stored_once(session: Session, ada: User, bob: User) -> None:
    conversation_id = start(session, ada, bob)

    first = send(session, ada, conversation_id, "hello", "same-id")
    session.expire_all()
    moved = session.get(Conversation, conversation_id)
    moved_to = (moved.last_message_id, moved.last_activity_at)
    second = send(session, ada, conversation_id, "hello (retried)", "same-id")

    assert (first.created, second.created) == (True, False)
    session.expire_all()
    retried = session.get(Conversation, conversation_id)
    assert (retried.last_message_id, retried.last_activity_at) == moved_to  # a retry moves nothing
    assert second.message.id == first.message.id
    assert second.message.body == "hello"
    assert sorted(second.member_ids) == sorted([ada.id, bob.id])
    assert count(session, Message) == 1
    # Another sender may use the same client id.
    assert send(session, bob, conversation_id, "hi", "same-id").created is True
    assert count(session, Message) == 2


def test_same_client_id_in_another_conversation_conflicts(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    with_bob = start(session, ada, bob)
    with_cy = start(session, ada, cy)
    send(session, ada, with_bob, "hello", "same-id")

    with pytest.raises(Conflict) as caught:
        send(session, ada, with_cy, "hello", "same-id")

    assert caught.value.code == "DUPLICATE_CLIENT_MESSAGE_ID"
    assert count(session, Message) == 1
    assert summary(session, ada, with_cy).last_message_id == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "EMPTY_MESSAGE"),
        ("   \n\t  ", "EMPTY_MESSAGE"),
        ("x" * 10_001, "MESSAGE_TOO_LONG"),
        (" " + "x" * 10_001 + " ", "MESSAGE_TOO_LONG"),
    ],
)
def test_bad_body_is_rejected(session: Session, ada: User, bob: User, body: str, code: str) -> None:
    conversation_id = start(session, ada, bob)

    with pytest.raises(InvalidInput) as caught:
        send(session, ada, conversation_id, body)

    assert (caught.value.code, caught.value.field) == (code, "content")
    assert count(session, Message) == 0


def test_ten_thousand_character_body_is_accepted(session: Session, ada: User, bob: User) -> None:
    conversation_id = start(session, ada, bob)
    body = "é" * 10_000

    result = send(session, ada, conversation_id, f"  {body}\n")

    session.expire_all()
    assert session.get(Message, result.message.id).body == body


@pytest.mark.parametrize("client_message_id", ["", "has space", "x" * 65, "ünïcode", "a/b"])
def test_malformed_client_message_id_is_rejected(
    session: Session, ada: User, bob: User, client_message_id: str
) -> None:
    conversation_id = start(session, ada, bob)

    with pytest.raises(InvalidInput) as caught:
        conv.send_message(
            session=session,
            user_id=ada.id,
            conversation_id=conversation_id,
            body="hi",
            client_message_id=client_message_id,
        )

    assert (caught.value.code, caught.value.field) == (
        "INVALID_CLIENT_MESSAGE_ID",
        "client_message_id",
    )
    assert count(session, Message) == 0


# --- unread counts and read positions ------------------------------------------------------------


def test_unread_counts_only_newer_messages_from_others(
    session: Session, ada: User, bob: User
) -> None:
    conversation_id = start(session, ada, bob)
    m1, m2, m3 = (send(session, ada, conversation_id, f"m{i}").message.id for i in (1, 2, 3))

    assert unread(session, ada, conversation_id) == 0  # own messages never count
    assert unread(session, bob, conversation_id) == 3

    assert mark_read(session, bob, conversation_id, m1) == (m1, True)
    assert unread(session, bob, conversation_id) == 2
    assert summary(session, bob, conversation_id).last_read_message_id == m1

    # Never backwards.
    assert mark_read(session, bob, conversation_id, 0) == (m1, False)
    assert mark_read(session, bob, conversation_id, m1) == (m1, False)
    assert unread(session, bob, conversation_id) == 2

    assert mark_read(session, bob, conversation_id, m2) == (m2, True)
    assert unread(session, bob, conversation_id) == 1

    # Default: up to the newest message.
    assert mark_read(session, bob, conversation_id) == (m3, True)
    assert mark_read(session, bob, conversation_id) == (m3, False)
    assert unread(session, bob, conversation_id) == 0

    # Bob's reply: unread for Ada, not for Bob (sending marks it read for him).
    m4 = send(session, bob, conversation_id, "reply").message.id
    assert unread(session, ada, conversation_id) == 1
    assert unread(session, bob, conversation_id) == 0
    assert summary(session, bob, conversation_id).last_read_message_id == m4


def test_own_messages_never_count_even_past_the_read_position(
    session: Session, ada: User, bob: User
) -> None:
    conversation_id = start(session, ada, bob)
    send(session, bob, conversation_id, "from bob")
    # A message of Ada's beyond her read position (e.g. one whose send raced
    # another): it must not be unread for her, only for Bob.
    session.add(
        Message(
            conversation_id=conversation_id,
            sender_id=ada.id,
            body="from ada",
            client_message_id="direct-insert",
            created_at=utcnow(),
        )
    )
    session.commit()

    assert summary(session, ada, conversation_id).last_read_message_id == 0
    assert unread(session, ada, conversation_id) == 1
    assert unread(session, bob, conversation_id) == 1


def test_mark_read_never_goes_past_the_newest_message(
    session: Session, ada: User, bob: User
) -> None:
    conversation_id = start(session, ada, bob)
    assert mark_read(session, bob, conversation_id) == (0, False)
    newest = send(session, ada, conversation_id).message.id

    assert mark_read(session, bob, conversation_id, newest + 1000) == (newest, True)
    later = send(session, ada, conversation_id).message.id
    assert unread(session, bob, conversation_id) == 1
    assert later > newest


def test_unread_ignores_deleted_messages_and_other_conversations(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    with_bob = start(session, ada, bob)
    group = start(session, ada, bob, cy)
    gone = send(session, ada, with_bob, "oops").message.id
    send(session, ada, with_bob, "kept")
    send(session, cy, group, "group hello")
    session.exec(update(Message).where(Message.id == gone).values(deleted_at=utcnow()))
    session.commit()

    assert unread(session, bob, with_bob) == 1
    assert unread(session, bob, group) == 1
    assert unread(session, ada, group) == 1
    assert unread(session, cy, group) == 0


def test_mark_read_many_moves_several_positions_with_one_update(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    with_bob = start(session, ada, bob)
    group = start(session, ada, bob, cy)
    first = send(session, ada, with_bob, "one").message.id
    second = send(session, ada, with_bob, "two").message.id
    in_group = send(session, cy, group, "group").message.id
    stranger = make_user(session, "Dee")

    commits: list[Session] = []
    writes: list[str] = []

    def count_commit(committed: Session) -> None:
        commits.append(committed)

    def count_write(_conn, _cursor, statement: str, *_args) -> None:
        if "UPDATE" in statement.upper():
            writes.append(statement)

    event.listen(session, "after_commit", count_commit)
    event.listen(session.get_bind(), "before_cursor_execute", count_write)
    try:
        moved = conv.mark_read_many(
            session=session,
            marks=[
                (bob.id, with_bob, first),  # one of two read: one left
                (cy.id, group, in_group),  # her own message: already read by sending
                (ada.id, group, in_group + 1000),  # capped at the newest
                (stranger.id, with_bob, second),  # not a member: ignored
            ],
        )
    finally:
        event.remove(session, "after_commit", count_commit)
        event.remove(session.get_bind(), "before_cursor_execute", count_write)

    assert sorted(moved, key=lambda p: p.user_id) == sorted(
        [
            conv.ReadPosition(
                user_id=bob.id,
                conversation_id=with_bob,
                last_read_message_id=first,
                unread_count=1,
                newest_message_id=second,
            ),
            conv.ReadPosition(
                user_id=ada.id,
                conversation_id=group,
                last_read_message_id=in_group,
                unread_count=0,
                newest_message_id=in_group,
            ),
        ],
        key=lambda p: p.user_id,
    )
    assert len(commits) == 1
    assert len(writes) == 1  # one statement moves them all
    assert unread(session, bob, with_bob) == 1
    assert unread(session, ada, group) == 0
    assert conv.mark_read_many(session=session, marks=[(bob.id, with_bob, first)]) == []
    assert conv.mark_read_many(session=session, marks=[]) == []


def test_mark_read_many_moves_exactly_the_marked_positions_whatever_their_number(
    session: Session, ada: User
) -> None:
    readers = [make_user(session, f"Reader{index}") for index in range(7)]
    group = start(session, ada, *readers)
    for marked in range(1, len(readers) + 1):  # sizes that fill, and fall short of, a power of two
        newest = send(session, ada, group, f"message {marked}").message.id
        moved = conv.mark_read_many(
            session=session, marks=[(reader.id, group, newest) for reader in readers[:marked]]
        )
        assert sorted(position.user_id for position in moved) == [r.id for r in readers[:marked]]
        assert {position.unread_count for position in moved} == {0}
        unread_counts = [unread(session, reader, group) for reader in readers]
        assert unread_counts == [0] * marked + [marked] * (len(readers) - marked)


# --- paging ------------------------------------------------------------------------------------


def test_keyset_paging_backwards_covers_everything_once(
    session: Session, ada: User, bob: User, cy: User
) -> None:
    conversation_id = start(session, ada, bob)
    elsewhere = start(session, ada, cy)
    ids = []
    for i in range(120):
        ids.append(send(session, ada if i % 3 else bob, conversation_id, f"message {i}").message.id)
        if i % 10 == 0:  # interleave another conversation's ids
            send(session, ada, elsewhere, f"elsewhere {i}")

    pages = []
    before = None
    for _ in range(10):  # bounded: a paging bug must fail, not loop forever
        page = conv.list_messages(
            session=session, user_id=bob.id, conversation_id=conversation_id, before=before
        )
        if not page:
            break
        pages.append([m.id for m in page])
        before = page[0].id
    else:
        pytest.fail(f"paging did not end: {[len(p) for p in pages]}")

    assert [len(p) for p in pages] == [50, 50, 20]
    for page in pages:
        assert page == sorted(page)
    # Each older page ends just before the newer page starts.
    assert pages[0] == ids[70:] and pages[1] == ids[20:70] and pages[2] == ids[:20]
    flattened = [i for page in reversed(pages) for i in page]
    assert flattened == ids
    assert len(set(flattened)) == 120
    first = conv.list_messages(
        session=session, user_id=bob.id, conversation_id=conversation_id, limit=1
    )
    assert (first[0].body, first[0].sender_name) == ("message 119", "Ada")


def test_after_returns_newer_messages_oldest_first(session: Session, ada: User, bob: User) -> None:
    conversation_id = start(session, ada, bob)
    ids = [send(session, ada, conversation_id, f"m{i}").message.id for i in range(30)]

    def after(after_id: int, limit: int = 50, before: int | None = None) -> list[int]:
        return [
            m.id
            for m in conv.list_messages(
                session=session,
                user_id=bob.id,
                conversation_id=conversation_id,
                after=after_id,
                limit=limit,
                before=before,
            )
        ]

    assert after(ids[9], limit=5) == ids[10:15]
    assert after(ids[9]) == ids[10:]
    assert after(0) == ids
    assert after(ids[-1]) == []
    assert after(ids[9], before=ids[20]) == ids[10:20]


def test_a_page_is_two_statements_and_shows_the_messages_as_sent(
    engine, session: Session, ada: User, bob: User
) -> None:
    """Every page opened and every tab catching up reads a page: the membership, then the rows."""
    conversation_id = start(session, ada, bob)
    sent = [
        send(session, ada if i % 2 else bob, conversation_id, f"m{i}").message for i in range(3)
    ]
    session.expunge_all()

    with count_statements(engine) as statements:
        page = conv.list_messages(session=session, user_id=bob.id, conversation_id=conversation_id)

    assert len(statements) == 2, statements
    assert page == sent
    assert all(message.created_at.tzinfo is not None for message in page)


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_out_of_range_limit_is_rejected(session: Session, ada: User, bob: User, limit: int) -> None:
    conversation_id = start(session, ada, bob)

    with pytest.raises(InvalidInput) as caught:
        conv.list_messages(
            session=session, user_id=ada.id, conversation_id=conversation_id, limit=limit
        )
    assert caught.value.field == "limit"


def test_limit_bounds_are_accepted(session: Session, ada: User, bob: User) -> None:
    conversation_id = start(session, ada, bob)
    ids = [send(session, ada, conversation_id).message.id for _ in range(3)]

    assert [
        m.id
        for m in conv.list_messages(
            session=session, user_id=ada.id, conversation_id=conversation_id, limit=1
        )
    ] == ids[-1:]
    assert [
        m.id
        for m in conv.list_messages(
            session=session, user_id=ada.id, conversation_id=conversation_id, limit=200
        )
    ] == ids


# --- the conversation list -----------------------------------------------------------------------


def test_list_orders_by_latest_activity_with_previews_and_unread(
    session: Session, ada: User, bob: User, cy: User, clock: TickingClock
) -> None:
    with_bob = start(session, ada, bob)
    with_cy = start(session, ada, cy)
    group = start(session, bob, ada, cy)
    empty = start(session, ada, make_user(session, "Dee"))

    send(session, bob, with_bob, "first from bob")
    send(session, cy, with_cy, "hello\n\n  from   cy  " + "y" * 200)
    send(session, ada, group, "ada in the group")
    send(session, bob, with_bob, "second from bob")

    listed = conv.list_conversations(session=session, user_id=ada.id)

    assert [s.id for s in listed] == [with_bob, group, with_cy, empty]
    by_id = {s.id: s for s in listed}

    latest = by_id[with_bob]
    assert latest.title == "Bob" and latest.is_group is False
    assert latest.last_message_preview == "second from bob"
    assert latest.last_message_sender_id == bob.id
    assert latest.unread_count == 2
    assert latest.last_read_message_id == 0

    preview = by_id[with_cy].last_message_preview
    assert preview.startswith("hello from cy yyy")
    assert len(preview) == 120 and preview.endswith("…")
    assert by_id[with_cy].unread_count == 1

    mine = by_id[group]
    assert (mine.title, mine.is_group, mine.unread_count) == ("Bob, Cy", True, 0)
    assert mine.last_message_sender_id == ada.id
    assert mine.last_read_message_id == mine.last_message_id
    assert [m.name for m in mine.members] == ["Ada", "Bob", "Cy"]

    nothing = by_id[empty]
    assert (
        nothing.last_message_id,
        nothing.last_message_preview,
        nothing.last_message_sender_id,
        nothing.unread_count,
    ) == (0, "", None, 0)
    assert all(s.last_activity_at.tzinfo is not None for s in listed)
    assert listed[0].last_activity_at > listed[1].last_activity_at > listed[2].last_activity_at

    # A new message moves its conversation to the top, in another session too.
    send(session, ada, empty, "now me")
    session.expire_all()
    assert [s.id for s in conv.list_conversations(session=session, user_id=ada.id)][:2] == [
        empty,
        with_bob,
    ]
    assert [
        s.id
        for s in conv.list_conversations(
            session=session, user_id=ada.id, conversation_ids=[group, with_cy]
        )
    ] == [group, with_cy]


def test_last_message_never_moves_backwards(session: Session, ada: User, bob: User) -> None:
    conversation_id = start(session, ada, bob)
    newer = send(session, ada, conversation_id, "newer").message.id
    # As if a send with a smaller id committed late: the pointer must not go back.
    session.exec(update(Conversation).values(last_message_id=newer + 100))
    session.commit()

    send(session, bob, conversation_id, "late")

    session.expire_all()
    assert session.get(Conversation, conversation_id).last_message_id == newer + 100


def test_list_conversations_uses_a_fixed_number_of_queries(
    session: Session,
    engine,
    ada: User,  # noqa: ANN001
) -> None:
    ada_id = ada.id

    def add_conversations(count: int) -> None:
        for _ in range(count):
            other = make_user(session, f"User{next(_counter)}")
            conversation_id = start(session, ada, other)
            send(session, other, conversation_id, "hello")
            send(session, ada, conversation_id, "hi back")

    def statements_for_list(expected: int) -> list[str]:
        session.close()  # start from a fresh transaction and an empty identity map
        with count_statements(engine) as statements:
            listed = conv.list_conversations(session=session, user_id=ada_id)
        assert len(listed) == expected
        assert all(s.last_message_preview == "hi back" for s in listed)
        return statements

    add_conversations(2)
    group = start(session, ada, make_user(session, "Grp1"), make_user(session, "Grp2"))
    send(session, ada, group, "hi back")
    few = statements_for_list(3)
    add_conversations(18)
    many = statements_for_list(21)

    assert len(few) == len(many), (few, many)
    assert len(many) <= 4


@pytest.mark.parametrize("body", ["nul \x00 inside", "bell \x07", "escape \x1b[31m"])
def test_control_characters_in_a_message_are_refused(session, body):
    alice = make_user(session, "Alice")
    bob = make_user(session, "Bob")
    conversation_id, _ = conv.start_conversation(
        session=session, creator_id=alice.id, emails=[bob.email]
    )
    with pytest.raises(InvalidInput) as refused:
        conv.send_message(
            session=session,
            user_id=alice.id,
            conversation_id=conversation_id,
            body=body,
            client_message_id="ctl-1",
        )
    assert refused.value.code == "INVALID_CHARACTERS"
    sent = conv.send_message(
        session=session,
        user_id=alice.id,
        conversation_id=conversation_id,
        body="line one\n\tline two",
        client_message_id="ctl-2",
    )
    assert sent.message.body == "line one\n\tline two"


def test_a_send_reports_the_previous_message_and_every_members_unread_count(session):
    alice, bob, carol = (
        make_user(session, "Alice"),
        make_user(session, "Bob"),
        make_user(session, "Carol"),
    )
    conversation_id, _ = conv.start_conversation(
        session=session, creator_id=alice.id, emails=[bob.email, carol.email]
    )
    first = conv.send_message(
        session=session,
        user_id=alice.id,
        conversation_id=conversation_id,
        body="one",
        client_message_id="p-1",
    )
    second = conv.send_message(
        session=session,
        user_id=bob.id,
        conversation_id=conversation_id,
        body="two",
        client_message_id="p-2",
    )
    assert first.previous_message_id == 0
    assert second.previous_message_id == first.message.id
    assert first.unread_by_member == {alice.id: 0, bob.id: 1, carol.id: 1}
    assert second.unread_by_member == {alice.id: 1, bob.id: 0, carol.id: 2}
    # The read positions the counts were taken from (sending marks it read for the sender).
    assert first.read_position_by_member == {alice.id: first.message.id, bob.id: 0, carol.id: 0}
    assert second.read_position_by_member == {
        alice.id: first.message.id,
        bob.id: second.message.id,
        carol.id: 0,
    }
    assert second.member_ids == sorted([alice.id, bob.id, carol.id])
    third = send(session, carol, conversation_id, "three")
    assert third.previous_message_id == second.message.id  # the newest before it, not the first
    assert third.unread_by_member == {alice.id: 2, bob.id: 1, carol.id: 0}


def test_a_send_waits_for_an_earlier_uncommitted_send_of_its_conversation(engine, session):
    """Ids follow commit order within a conversation, so the newest message's counts are whole."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer in at a time; the app queues its writers (chat_app.db)")
    alice, bob = make_user(session, "Alice"), make_user(session, "Bob")
    conversation_id, _ = conv.start_conversation(
        session=session, creator_id=alice.id, emails=[bob.email]
    )
    ids = {"cid": conversation_id, "uid": alice.id}
    with Session(engine) as in_flight:
        # A send paused after its insert, before its commit: what a slower worker's send looks like.
        connection = in_flight.connection()
        connection.execute(conv._SENDER_NAME_IF_MEMBER, ids)
        earlier_id = connection.execute(
            conv._INSERT_MESSAGE,
            {
                "conversation_id": conversation_id,
                "sender_id": alice.id,
                "body": "first",
                "client_message_id": "race-1",
                "created_at": utcnow(),
            },
        ).inserted_primary_key[0]
        results: list[conv.SendResult] = []

        def send_the_next() -> None:
            with Session(engine) as other:
                results.append(
                    conv.send_message(
                        session=other,
                        user_id=alice.id,
                        conversation_id=conversation_id,
                        body="second",
                        client_message_id="race-2",
                    )
                )

        later = threading.Thread(target=send_the_next)
        later.start()
        later.join(timeout=0.5)
        assert later.is_alive(), "the second send did not wait for the first to commit"
        in_flight.commit()
    later.join(timeout=10)
    [second] = results
    assert second.message.id > earlier_id
    assert second.previous_message_id == earlier_id
    assert second.unread_by_member[bob.id] == 2  # both messages, none missed
