"""`/api/conversations`: listing, starting, paging and sending over HTTP against the real app.

Every test talks to the running server (`app_server`) with a token from the
sign-up route, and checks the server's own SQLite database (`db`) wherever
"nothing was written" matters.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from chat_app.models import Conversation, ConversationMember, Message
from tests.conftest import Account
from tests.support.server import AppServer

COOKIE_NAME = "chat_app.session_token"
MISSING_ID = 987_654_321
NOT_FOUND_BODY = {"code": "CONVERSATION_NOT_FOUND", "message": "Conversation not found"}

MakeAccount = Callable[..., Account]


# --- helpers ------------------------------------------------------------------------


def bearer(account: Account) -> dict[str, str]:
    """Headers that authenticate as `account` the way scripts do."""
    return {"Authorization": f"Bearer {account.token}"}


def cookie(account: Account) -> dict[str, str]:
    """Headers that authenticate as `account` the way a browser does (cookie only)."""
    return {"Cookie": f"{COOKIE_NAME}={account.token}"}


def client_id() -> str:
    """A fresh, well-formed client_message_id."""
    return uuid.uuid4().hex


def start(api: httpx.Client, who: Account, *emails: str) -> httpx.Response:
    return api.post("/api/conversations", json={"emails": list(emails)}, headers=bearer(who))


def start_id(api: httpx.Client, who: Account, *others: Account) -> int:
    response = start(api, who, *(other.email for other in others))
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def send(
    api: httpx.Client,
    who: Account,
    conversation_id: int,
    content: str = "hi",
    client_message_id: str | None = None,
) -> httpx.Response:
    return api.post(
        f"/api/conversations/{conversation_id}/messages",
        json={
            "content": content,
            "client_message_id": client_id() if client_message_id is None else client_message_id,
        },
        headers=bearer(who),
    )


def sent(api: httpx.Client, who: Account, conversation_id: int, content: str = "hi") -> dict:
    response = send(api, who, conversation_id, content)
    assert response.status_code == 201, response.text
    return response.json()


def listing(api: httpx.Client, who: Account) -> list[dict]:
    response = api.get("/api/conversations", headers=bearer(who))
    assert response.status_code == 200, response.text
    return response.json()


def conversation_for(api: httpx.Client, who: Account, conversation_id: int) -> dict:
    rows = [row for row in listing(api, who) if row["id"] == conversation_id]
    assert len(rows) == 1, rows
    return rows[0]


def messages(
    api: httpx.Client, who: Account, conversation_id: int | str, **params: object
) -> httpx.Response:
    return api.get(
        f"/api/conversations/{conversation_id}/messages", params=params, headers=bearer(who)
    )


def count(db: Session, model: type, *where: object) -> int:
    """Rows of `model` in the app's database right now (a fresh read, not a stale snapshot)."""
    db.rollback()
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)
    return db.exec(query).one()


def snapshot(db: Session) -> tuple[int, int, list[tuple]]:
    """Everything a stranger's request could change: messages, conversations, read marks."""
    db.rollback()
    members = sorted(
        (m.conversation_id, m.user_id, m.last_read_message_id)
        for m in db.exec(select(ConversationMember))
    )
    conversation_rows = sorted(
        (c.id, c.last_message_id, c.last_activity_at) for c in db.exec(select(Conversation))
    )
    return count(db, Message), count(db, Conversation), [*members, *conversation_rows]


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


@pytest.fixture
def alice(make_account: MakeAccount) -> Account:
    return make_account("Alice Liddell")


@pytest.fixture
def bob(make_account: MakeAccount) -> Account:
    return make_account("Bob Builder")


@pytest.fixture
def carol(make_account: MakeAccount) -> Account:
    return make_account("Carol Danvers")


@pytest.fixture
def mallory(make_account: MakeAccount) -> Account:
    return make_account("Mallory Stranger")


@pytest.fixture
def thread(api: httpx.Client, alice: Account, bob: Account) -> int:
    """A 1:1 between Alice and Bob with one message from each."""
    conversation_id = start_id(api, alice, bob)
    sent(api, alice, conversation_id, "secret from alice")
    sent(api, bob, conversation_id, "secret from bob")
    return conversation_id


# --- GET /api/conversations ------------------------------------------------------------


def test_list_requires_credentials(api: httpx.Client) -> None:
    response = api.get("/api/conversations")
    body = assert_error(response, 401, "UNAUTHORIZED")
    assert set(body) == {"code", "message"}


def test_list_rejects_a_bogus_token(api: httpx.Client) -> None:
    assert_error(
        api.get("/api/conversations", headers={"Authorization": "Bearer not-a-real-token"}),
        401,
        "UNAUTHORIZED",
    )
    assert_error(
        api.get("/api/conversations", headers={"Cookie": f"{COOKIE_NAME}=not-a-real-token"}),
        401,
        "UNAUTHORIZED",
    )


def test_new_user_has_no_conversations(api: httpx.Client, alice: Account) -> None:
    assert listing(api, alice) == []


def test_list_works_with_the_session_cookie(
    api: httpx.Client, alice: Account, bob: Account
) -> None:
    conversation_id = start_id(api, alice, bob)
    response = api.get("/api/conversations", headers=cookie(alice))
    assert response.status_code == 200, response.text
    assert [row["id"] for row in response.json()] == [conversation_id]


def test_list_shows_titles_members_previews_and_recent_first(
    api: httpx.Client, alice: Account, bob: Account, carol: Account
) -> None:
    with_bob = start_id(api, alice, bob)
    with_carol = start_id(api, alice, carol)
    sent(api, alice, with_bob, "first to bob")
    sent(api, alice, with_carol, "hello carol")
    last = sent(api, alice, with_bob, "  latest\n\nto   bob  ")

    rows = listing(api, alice)
    assert [row["id"] for row in rows] == [with_bob, with_carol]

    bob_row, carol_row = rows
    assert bob_row["title"] == bob.name
    assert carol_row["title"] == carol.name
    assert bob_row["isGroup"] is False
    assert sorted(bob_row["members"], key=lambda m: m["id"]) == sorted(
        [
            {"id": alice.id, "name": alice.name, "email": alice.email},
            {"id": bob.id, "name": bob.name, "email": bob.email},
        ],
        key=lambda m: m["id"],
    )
    assert bob_row["lastMessageId"] == last["id"]
    assert bob_row["lastMessagePreview"] == "latest to bob"
    assert carol_row["lastMessagePreview"] == "hello carol"
    assert bob_row["lastActivityAt"] >= carol_row["lastActivityAt"]
    assert bob_row["lastActivityAt"].endswith("Z")

    # Activity in the older conversation moves it to the top, and Bob sees Alice's name.
    sent(api, carol, with_carol, "carol replies")
    assert [row["id"] for row in listing(api, alice)] == [with_carol, with_bob]
    assert conversation_for(api, bob, with_bob)["title"] == alice.name


def test_conversation_without_messages(api: httpx.Client, alice: Account, bob: Account) -> None:
    conversation_id = start_id(api, alice, bob)
    row = conversation_for(api, alice, conversation_id)
    assert row["lastMessageId"] is None
    assert row["lastMessagePreview"] == ""
    assert row["unreadCount"] == 0
    assert row["lastReadMessageId"] == 0


def test_unread_count_comes_from_read_positions(
    api: httpx.Client, alice: Account, bob: Account
) -> None:
    conversation_id = start_id(api, alice, bob)
    sent(api, alice, conversation_id, "one")
    second = sent(api, alice, conversation_id, "two")

    bob_row = conversation_for(api, bob, conversation_id)
    assert bob_row["unreadCount"] == 2
    assert bob_row["lastReadMessageId"] == 0
    # Alice's own messages never count as unread for her.
    alice_row = conversation_for(api, alice, conversation_id)
    assert alice_row["unreadCount"] == 0
    assert alice_row["lastReadMessageId"] == second["id"]

    # Listing and paging read nothing: Bob still has 2 unread.
    assert messages(api, bob, conversation_id).status_code == 200
    assert conversation_for(api, bob, conversation_id)["unreadCount"] == 2

    # Bob's reply marks everything up to it read for him, and is 1 unread for Alice.
    reply = sent(api, bob, conversation_id, "three")
    bob_row = conversation_for(api, bob, conversation_id)
    assert bob_row["unreadCount"] == 0
    assert bob_row["lastReadMessageId"] == reply["id"]
    assert conversation_for(api, alice, conversation_id)["unreadCount"] == 1

    sent(api, alice, conversation_id, "four")
    assert conversation_for(api, alice, conversation_id)["unreadCount"] == 0
    assert conversation_for(api, bob, conversation_id)["unreadCount"] == 1


# --- POST /api/conversations ----------------------------------------------------------


def test_start_creates_then_returns_the_existing_one_to_one(
    api: httpx.Client, alice: Account, bob: Account, db: Session
) -> None:
    created = start(api, alice, bob.email)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["isGroup"] is False
    assert body["title"] == bob.name
    assert {m["id"] for m in body["members"]} == {alice.id, bob.id}
    assert body["unreadCount"] == 0
    conversation_id = body["id"]

    again = start(api, alice, bob.email.upper())
    assert again.status_code == 200, again.text
    assert again.json()["id"] == conversation_id

    reverse = start(api, bob, f"  {alice.email.title()}  ")
    assert reverse.status_code == 200, reverse.text
    assert reverse.json()["id"] == conversation_id
    assert reverse.json()["title"] == alice.name

    assert count(db, ConversationMember, ConversationMember.conversation_id == conversation_id) == 2


def test_start_with_an_unknown_email(api: httpx.Client, alice: Account, db: Session) -> None:
    before = count(db, Conversation)
    body = assert_error(start(api, alice, "nobody-here@test.com"), 404, "USER_NOT_FOUND")
    assert body["message"].startswith("No user with that email")
    assert count(db, Conversation) == before


def test_start_with_a_mix_of_known_and_unknown_emails_creates_nothing(
    api: httpx.Client, alice: Account, bob: Account, db: Session
) -> None:
    before = count(db, Conversation)
    assert_error(start(api, alice, bob.email, "ghost@test.com"), 404, "USER_NOT_FOUND")
    assert count(db, Conversation) == before


def test_start_with_own_email(api: httpx.Client, alice: Account) -> None:
    assert_error(start(api, alice, alice.email), 400, "OWN_EMAIL")
    assert_error(start(api, alice, alice.email.upper()), 400, "OWN_EMAIL")


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@test.com", "two words@test.com", ""])
def test_start_with_an_invalid_email(api: httpx.Client, alice: Account, email: str) -> None:
    assert_error(start(api, alice, email), 400, "INVALID_EMAIL")


@pytest.mark.parametrize(
    "payload",
    [{"emails": []}, {}, {"emails": "bob@test.com"}, {"emails": None}, {"email": ["x@test.com"]}],
    ids=["empty-list", "missing", "string", "null", "misspelt-field"],
)
def test_start_with_a_malformed_body(api: httpx.Client, alice: Account, payload: dict) -> None:
    response = api.post("/api/conversations", json=payload, headers=bearer(alice))
    assert_error(response, 400, "VALIDATION_ERROR")


def test_start_requires_credentials(api: httpx.Client, bob: Account, db: Session) -> None:
    before = count(db, Conversation)
    assert_error(api.post("/api/conversations", json={"emails": [bob.email]}), 401, "UNAUTHORIZED")
    assert count(db, Conversation) == before


def test_start_a_group(api: httpx.Client, alice: Account, bob: Account, carol: Account) -> None:
    response = start(api, alice, bob.email, carol.email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["isGroup"] is True
    assert {m["id"] for m in body["members"]} == {alice.id, bob.id, carol.id}
    assert body["title"] == ", ".join(sorted([bob.name, carol.name]))

    # A group is never "the existing one": asking again makes another.
    again = start(api, alice, bob.email, carol.email)
    assert again.status_code == 201
    assert again.json()["id"] != body["id"]
    assert conversation_for(api, carol, body["id"])["isGroup"] is True


def test_start_with_the_cookie_and_origin(api: httpx.Client, alice: Account, bob: Account) -> None:
    response = api.post("/api/conversations", json={"emails": [bob.email]}, headers=cookie(alice))
    assert response.status_code == 201, response.text
    assert response.json()["title"] == bob.name


# --- GET /api/conversations/{id}/messages ------------------------------------------------


def test_keyset_paging_through_120_messages(
    api: httpx.Client, alice: Account, bob: Account
) -> None:
    conversation_id = start_id(api, alice, bob)
    sent_ids = []
    for n in range(120):
        author = alice if n % 3 else bob
        sent_ids.append(sent(api, author, conversation_id, f"message {n:03}")["id"])
    assert sent_ids == sorted(sent_ids)

    pages: list[list[dict]] = []
    before: int | None = None
    while True:
        params = {"before": before} if before is not None else {}
        response = messages(api, bob, conversation_id, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["messages"])
        ids = [m["id"] for m in page["messages"]]
        assert ids == sorted(ids), "a page is oldest first"
        if before is not None:
            assert all(i < before for i in ids)
        before = page["nextBefore"]
        if before is None:
            break
        assert before == ids[0]
        assert len(pages) < 10, "paging never ends"

    assert [len(page) for page in pages] == [50, 50, 20]
    everything = [m for page in reversed(pages) for m in page]
    assert [m["id"] for m in everything] == sent_ids  # no gaps, no duplicates, in order
    assert [m["content"] for m in everything] == [f"message {n:03}" for n in range(120)]

    first = everything[0]
    assert first["conversationId"] == conversation_id
    assert first["senderId"] == bob.id
    assert first["senderName"] == bob.name
    assert first["createdAt"].endswith("Z")
    assert everything[1]["senderName"] == alice.name

    # An explicit limit pages the same way.
    small = messages(api, alice, conversation_id, limit=7).json()
    assert [m["id"] for m in small["messages"]] == sent_ids[-7:]
    assert small["nextBefore"] == sent_ids[-7]
    big = messages(api, alice, conversation_id, limit=200).json()
    assert [m["id"] for m in big["messages"]] == sent_ids
    assert big["nextBefore"] is None


def test_messages_of_an_empty_conversation(api: httpx.Client, alice: Account, bob: Account) -> None:
    conversation_id = start_id(api, alice, bob)
    response = messages(api, alice, conversation_id)
    assert response.status_code == 200
    assert response.json() == {"messages": [], "nextBefore": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": -1},
        {"limit": "ten"},
        {"before": 0},
        {"before": "x"},
        {"before": 10**30},
    ],
)
def test_messages_with_bad_paging_parameters(
    api: httpx.Client, alice: Account, thread: int, params: dict
) -> None:
    assert_error(messages(api, alice, thread, **params), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "-1", "0", "99999999999999999999999"])
def test_messages_with_a_non_integer_or_impossible_id(
    api: httpx.Client, alice: Account, bad_id: str
) -> None:
    response = messages(api, alice, bad_id)
    assert response.status_code in (400, 404), response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    response = send(api, alice, bad_id)  # type: ignore[arg-type]
    assert response.status_code in (400, 404), response.text
    assert set(response.json()) == {"code", "message"}


def test_the_largest_possible_id_is_simply_not_found(
    api: httpx.Client, alice: Account, db: Session
) -> None:
    largest = 2**63 - 1
    before = count(db, Message)
    assert messages(api, alice, largest).json() == NOT_FOUND_BODY
    assert send(api, alice, largest).json() == NOT_FOUND_BODY
    assert count(db, Message) == before


def test_messages_require_credentials(api: httpx.Client, thread: int) -> None:
    assert_error(api.get(f"/api/conversations/{thread}/messages"), 401, "UNAUTHORIZED")


def test_stranger_gets_the_same_404_as_for_a_missing_conversation(
    api: httpx.Client, mallory: Account, thread: int
) -> None:
    stranger = messages(api, mallory, thread)
    missing = messages(api, mallory, MISSING_ID)
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json() == missing.json() == NOT_FOUND_BODY
    assert "secret" not in stranger.text


# --- POST /api/conversations/{id}/messages ---------------------------------------------


def test_send_is_idempotent_per_client_message_id(
    api: httpx.Client, alice: Account, bob: Account, db: Session
) -> None:
    conversation_id = start_id(api, alice, bob)
    key = client_id()
    first = send(api, alice, conversation_id, "  hello bob  ", key)
    assert first.status_code == 201, first.text
    message = first.json()
    assert message["content"] == "hello bob"
    assert message["clientMessageId"] == key
    assert message["senderId"] == alice.id
    assert message["senderName"] == alice.name
    assert message["conversationId"] == conversation_id

    retry = send(api, alice, conversation_id, "  hello bob  ", key)
    assert retry.status_code == 200, retry.text
    assert retry.json() == message

    different_body = send(api, alice, conversation_id, "changed my mind", key)
    assert different_body.status_code == 200
    assert different_body.json()["id"] == message["id"]
    assert different_body.json()["content"] == "hello bob"

    assert count(db, Message, Message.client_message_id == key) == 1
    assert count(db, Message, Message.conversation_id == conversation_id) == 1
    assert [m["id"] for m in messages(api, bob, conversation_id).json()["messages"]] == [
        message["id"]
    ]
    assert conversation_for(api, bob, conversation_id)["unreadCount"] == 1

    # Another sender may use the same client id: it is per sender.
    theirs = send(api, bob, conversation_id, "same key, other sender", key)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != message["id"]


@pytest.mark.parametrize("content", ["", " ", "\n\t  \n"])
def test_send_empty_message(
    api: httpx.Client, alice: Account, thread: int, db: Session, content: str
) -> None:
    before = count(db, Message)
    assert_error(send(api, alice, thread, content), 400, "EMPTY_MESSAGE")
    assert count(db, Message) == before


def test_send_length_limit(api: httpx.Client, alice: Account, thread: int, db: Session) -> None:
    before = count(db, Message)
    body = assert_error(send(api, alice, thread, "x" * 10_001), 400, "MESSAGE_TOO_LONG")
    assert "10,000" in body["message"]
    assert count(db, Message) == before

    accepted = send(api, alice, thread, "y" * 10_000)
    assert accepted.status_code == 201, accepted.text
    assert len(accepted.json()["content"]) == 10_000
    # Outer whitespace does not count against the limit.
    padded = send(api, alice, thread, "  " + "z" * 10_000 + "  ")
    assert padded.status_code == 201, padded.text
    assert count(db, Message) == before + 2


@pytest.mark.parametrize(
    "bad_key",
    ["has space", "a" * 65, "", "semi;colon", "ünïcode", "dot.ted"],
    ids=["space", "65-chars", "empty", "semicolon", "unicode", "dot"],
)
def test_send_with_a_malformed_client_message_id(
    api: httpx.Client, alice: Account, thread: int, db: Session, bad_key: str
) -> None:
    before = count(db, Message)
    response = send(api, alice, thread, "hello", bad_key)
    body = assert_error(response, 400, "INVALID_CLIENT_MESSAGE_ID")
    assert "client_message_id" in body["message"]
    assert count(db, Message) == before


def test_send_accepts_a_64_character_client_message_id(
    api: httpx.Client, alice: Account, thread: int
) -> None:
    response = send(api, alice, thread, "hello", "A-z_9" + "x" * 59)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "payload",
    [
        {"content": "hi"},
        {"client_message_id": "abc"},
        {"content": None, "client_message_id": "a"},
        {"content": 5, "client_message_id": "abc"},
    ],
    ids=["no-client-id", "no-content", "null-content", "number-content"],
)
def test_send_with_a_malformed_body(
    api: httpx.Client, alice: Account, thread: int, db: Session, payload: dict
) -> None:
    before = count(db, Message)
    response = api.post(
        f"/api/conversations/{thread}/messages", json=payload, headers=bearer(alice)
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert count(db, Message) == before


def test_send_reusing_a_client_message_id_in_another_conversation(
    api: httpx.Client, alice: Account, bob: Account, carol: Account, db: Session
) -> None:
    with_bob = start_id(api, alice, bob)
    with_carol = start_id(api, alice, carol)
    key = client_id()
    assert send(api, alice, with_bob, "for bob", key).status_code == 201
    before = count(db, Message)
    assert_error(send(api, alice, with_carol, "for carol", key), 409, "DUPLICATE_CLIENT_MESSAGE_ID")
    assert count(db, Message) == before
    assert count(db, Message, Message.conversation_id == with_carol) == 0


def test_send_to_a_missing_conversation(api: httpx.Client, alice: Account, db: Session) -> None:
    before = count(db, Message)
    response = send(api, alice, MISSING_ID)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND_BODY
    assert count(db, Message) == before


def test_send_as_a_non_member(
    api: httpx.Client, mallory: Account, thread: int, db: Session
) -> None:
    before = snapshot(db)
    response = send(api, mallory, thread, "mallory was here")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND_BODY
    assert response.json() == send(api, mallory, MISSING_ID, "mallory was here").json()
    assert snapshot(db) == before
    assert count(db, Message, Message.sender_id == mallory.id) == 0


def test_send_requires_credentials(api: httpx.Client, thread: int, db: Session) -> None:
    before = count(db, Message)
    response = api.post(
        f"/api/conversations/{thread}/messages",
        json={"content": "anonymous", "client_message_id": client_id()},
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert count(db, Message) == before


def test_a_signed_out_session_can_neither_send_nor_read(
    api: httpx.Client, alice: Account, thread: int, db: Session
) -> None:
    before = snapshot(db)
    assert api.post("/api/auth/sign-out", headers=bearer(alice)).status_code == 200
    assert_error(send(api, alice, thread, "after signing out"), 401, "UNAUTHORIZED")
    assert snapshot(db) == before
    for path in ("/api/conversations", f"/api/conversations/{thread}/messages"):
        body = assert_error(api.get(path, headers=bearer(alice)), 401, "UNAUTHORIZED")
        assert "secret" not in str(body)


def test_send_with_a_bogus_token_stores_nothing(
    api: httpx.Client, thread: int, db: Session
) -> None:
    before = snapshot(db)
    for headers in (
        {"Authorization": "Bearer not-a-real-token"},
        {"Cookie": f"{COOKIE_NAME}=not-a-real-token"},
    ):
        response = api.post(
            f"/api/conversations/{thread}/messages",
            json={"content": "forged", "client_message_id": client_id()},
            headers=headers,
        )
        assert_error(response, 401, "UNAUTHORIZED")
    assert snapshot(db) == before


def test_send_with_the_cookie_and_origin(api: httpx.Client, alice: Account, thread: int) -> None:
    response = api.post(
        f"/api/conversations/{thread}/messages",
        json={"content": "from the browser", "client_message_id": client_id()},
        headers=cookie(alice),
    )
    assert response.status_code == 201, response.text
    assert response.json()["senderId"] == alice.id


# --- CSRF ------------------------------------------------------------------------------


@pytest.fixture
def bare(app_server: AppServer):
    """A client that sends no Origin header at all."""
    with httpx.Client(base_url=app_server.url, timeout=20) as client:
        yield client


def _csrf_writes(alice: Account, bob: Account, thread: int) -> list[tuple[str, dict]]:
    return [
        ("/api/conversations", {"emails": [bob.email]}),
        (
            f"/api/conversations/{thread}/messages",
            {"content": "forged", "client_message_id": client_id()},
        ),
    ]


def test_cookie_write_without_origin_is_refused(
    bare: httpx.Client, alice: Account, bob: Account, thread: int, db: Session
) -> None:
    before = snapshot(db)
    for path, payload in _csrf_writes(alice, bob, thread):
        response = bare.post(path, json=payload, headers=cookie(alice))
        assert_error(response, 403, "MISSING_OR_NULL_ORIGIN")
        response = bare.post(path, json=payload, headers={**cookie(alice), "Origin": "null"})
        assert_error(response, 403, "MISSING_OR_NULL_ORIGIN")
    assert snapshot(db) == before


def test_cookie_write_from_another_origin_is_refused(
    bare: httpx.Client, alice: Account, bob: Account, thread: int, db: Session
) -> None:
    before = snapshot(db)
    for path, payload in _csrf_writes(alice, bob, thread):
        response = bare.post(
            path, json=payload, headers={**cookie(alice), "Origin": "http://evil.example"}
        )
        assert_error(response, 403, "INVALID_ORIGIN")
    assert snapshot(db) == before


def test_bearer_write_without_origin_is_allowed(
    bare: httpx.Client, alice: Account, thread: int
) -> None:
    response = bare.post(
        f"/api/conversations/{thread}/messages",
        json={"content": "from a script", "client_message_id": client_id()},
        headers=bearer(alice),
    )
    assert response.status_code == 201, response.text


def test_cookie_read_without_origin_is_allowed(
    bare: httpx.Client, alice: Account, thread: int
) -> None:
    response = bare.get("/api/conversations", headers=cookie(alice))
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [thread]


# --- a stranger on every route ---------------------------------------------------------


def test_stranger_on_every_route_learns_nothing_and_changes_nothing(
    api: httpx.Client, mallory: Account, alice: Account, thread: int, db: Session
) -> None:
    before = snapshot(db)
    attempts = {
        "list messages": messages(api, mallory, thread),
        "list older messages": messages(api, mallory, thread, before=10**6, limit=200),
        "post message": send(api, mallory, thread, "mallory was here"),
        "post message (cookie)": api.post(
            f"/api/conversations/{thread}/messages",
            json={"content": "mallory was here", "client_message_id": client_id()},
            headers=cookie(mallory),
        ),
    }
    for name, response in attempts.items():
        assert response.status_code == 404, name
        assert response.json() == NOT_FOUND_BODY, name
        assert "secret" not in response.text, name
    assert listing(api, mallory) == []
    assert snapshot(db) == before
    # Alice's view is untouched too.
    assert conversation_for(api, alice, thread)["unreadCount"] == 1


# --- OpenAPI ---------------------------------------------------------------------------


def test_openapi_lists_the_conversation_routes(api: httpx.Client) -> None:
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/conversations"]) >= {"get", "post"}
    assert set(paths["/api/conversations/{conversation_id}/messages"]) >= {"get", "post"}
