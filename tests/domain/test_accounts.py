"""Account service: sign-up validation, password hashing, sign-in and its throttling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from passlib.context import CryptContext
from passlib.hash import argon2
from sqlmodel import Session, func, select

from chat_app.clock import utcnow
from chat_app.domain import accounts
from chat_app.domain.errors import Conflict, InvalidInput, NotAuthenticated, Throttled
from chat_app.models import SignInFailure, User

PASSWORD = "correct horse battery"
CURRENT_PARAMS = "$argon2id$v=19$m=7168,t=5,p=1$"


def sign_up(
    session: Session, *, name: str = "Ada", email: str = "ada@example.com", password: str = PASSWORD
) -> User:
    return accounts.sign_up(session=session, name=name, email=email, password=password)


def failures(session: Session, **where: str) -> int:
    query = select(func.count()).select_from(SignInFailure)
    for column, value in where.items():
        query = query.where(getattr(SignInFailure, column) == value)
    return session.exec(query).one()


def stored_user(session: Session, email: str) -> User:
    session.expire_all()
    return session.exec(select(User).where(User.email == email)).one()


# --- sign-up -------------------------------------------------------------------


def test_sign_up_normalises_email_and_name(session: Session) -> None:
    user = sign_up(session, name="  Ada \t  Lovelace \n", email="  Ada.Lovelace@Example.COM  ")

    assert user.id is not None
    assert user.email == "ada.lovelace@example.com"
    assert user.name == "Ada Lovelace"
    stored = stored_user(session, "ada.lovelace@example.com")
    assert (stored.id, stored.name) == (user.id, "Ada Lovelace")
    assert stored.created_at.tzinfo is not None
    assert session.exec(select(func.count()).select_from(User)).one() == 1


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@example.",
        "a@b.c" + "c" * 250,
    ],
)
def test_sign_up_rejects_bad_email(session: Session, email: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sign_up(session, email=email)

    assert caught.value.field == "email"
    assert caught.value.code == "INVALID_EMAIL"
    assert session.exec(select(func.count()).select_from(User)).one() == 0


@pytest.mark.parametrize(
    ("name", "code"),
    [("", "INVALID_NAME"), ("   \t\n ", "INVALID_NAME"), ("x" * 101, "NAME_TOO_LONG")],
)
def test_sign_up_rejects_bad_name(session: Session, name: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sign_up(session, name=name)

    assert caught.value.field == "name"
    assert caught.value.code == code
    assert session.exec(select(func.count()).select_from(User)).one() == 0


def test_sign_up_accepts_100_character_name(session: Session) -> None:
    assert sign_up(session, name="x" * 100).name == "x" * 100


@pytest.mark.parametrize(
    ("password", "code"),
    [("", "PASSWORD_TOO_SHORT"), ("p" * 7, "PASSWORD_TOO_SHORT"), ("p" * 129, "PASSWORD_TOO_LONG")],
)
def test_sign_up_rejects_bad_password_length(session: Session, password: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sign_up(session, password=password)

    assert caught.value.field == "password"
    assert caught.value.code == code
    assert session.exec(select(func.count()).select_from(User)).one() == 0


@pytest.mark.parametrize("length", [8, 128])
def test_sign_up_accepts_password_length_bounds(session: Session, length: int) -> None:
    password = "p" * length
    user = sign_up(session, password=password)

    assert argon2.verify(password, user.password_hash)
    assert (
        accounts.sign_in(
            session=session, email="ada@example.com", password=password, ip_address="10.0.0.1"
        ).id
        == user.id
    )


def test_sign_up_duplicate_email_in_other_case_conflicts(session: Session) -> None:
    first = sign_up(session, email="ada@example.com")

    with pytest.raises(Conflict) as caught:
        sign_up(session, name="Other Ada", email="  ADA@Example.com ")

    assert caught.value.message == "An account with this email already exists"
    assert caught.value.field == "email"
    assert session.exec(select(User.id)).all() == [first.id]
    # The session is still usable after the conflict.
    assert sign_up(session, email="grace@example.com").id != first.id


def test_sign_up_stores_an_argon2id_hash_never_the_password(session: Session) -> None:
    user = sign_up(session)

    stored = stored_user(session, "ada@example.com").password_hash
    assert stored.startswith(CURRENT_PARAMS)
    assert PASSWORD not in stored
    assert argon2.verify(PASSWORD, stored)
    assert not argon2.verify(PASSWORD + "x", stored)
    # Salted: the same password hashes differently for another account.
    other = sign_up(session, email="grace@example.com")
    assert other.password_hash != user.password_hash


# --- sign-in -------------------------------------------------------------------


def test_sign_in_with_right_password_any_email_case(session: Session) -> None:
    user = sign_up(session)

    signed_in = accounts.sign_in(
        session=session, email="  ADA@example.com ", password=PASSWORD, ip_address="10.0.0.1"
    )

    assert signed_in.id == user.id


def test_wrong_password_and_unknown_email_fail_alike(session: Session) -> None:
    sign_up(session)

    with pytest.raises(NotAuthenticated) as wrong_password:
        accounts.sign_in(
            session=session,
            email="ada@example.com",
            password="wrong password",
            ip_address="10.0.0.1",
        )
    with pytest.raises(NotAuthenticated) as unknown_email:
        accounts.sign_in(
            session=session,
            email="nobody@example.com",
            password=PASSWORD,
            ip_address="10.0.0.2",
        )

    assert wrong_password.value.message == "Invalid email or password"
    assert unknown_email.value.message == "Invalid email or password"
    assert wrong_password.value.code == unknown_email.value.code
    assert wrong_password.value.field is unknown_email.value.field is None
    # Both are recorded for throttling, under the normalised email.
    assert failures(session, email="ada@example.com", ip_address="10.0.0.1") == 1
    assert failures(session, email="nobody@example.com", ip_address="10.0.0.2") == 1


def test_unknown_email_still_does_the_hashing_work(session: Session, monkeypatch) -> None:
    from chat_app.domain import passwords

    calls = []
    original = passwords.password_context.verify

    def spy(secret, hash, **kwargs):  # noqa: A002, ANN001, ANN202
        calls.append(hash)
        return original(secret, hash, **kwargs)

    monkeypatch.setattr(passwords.password_context, "verify", spy)
    with pytest.raises(NotAuthenticated):
        accounts.sign_in(
            session=session, email="nobody@example.com", password=PASSWORD, ip_address="10.0.0.1"
        )

    assert len(calls) == 1
    assert calls[0].startswith(CURRENT_PARAMS)


def test_sign_in_with_malformed_email_is_invalid_input(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.sign_in(
            session=session, email="not-an-email", password=PASSWORD, ip_address="10.0.0.1"
        )

    assert caught.value.code == "INVALID_EMAIL"


# --- throttling ----------------------------------------------------------------


def fail(session: Session, email: str, ip_address: str) -> None:
    with pytest.raises(NotAuthenticated):
        accounts.sign_in(
            session=session, email=email, password="wrong password", ip_address=ip_address
        )


def test_five_failures_for_one_email_throttle_even_the_right_password(session: Session) -> None:
    sign_up(session)
    for attempt in range(5):  # from different addresses: only the email limit applies
        fail(session, "ada@example.com", f"10.0.0.{attempt}")

    with pytest.raises(Throttled) as caught:
        accounts.sign_in(
            session=session, email="ADA@example.com", password=PASSWORD, ip_address="10.0.1.1"
        )

    assert 1 <= caught.value.retry_after <= 600
    assert caught.value.code == "TOO_MANY_REQUESTS"
    # A throttled attempt is not itself recorded as a failure.
    assert failures(session, email="ada@example.com") == 5


def test_four_failures_do_not_throttle(session: Session) -> None:
    user = sign_up(session)
    for attempt in range(4):
        fail(session, "ada@example.com", f"10.0.0.{attempt}")

    signed_in = accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.1.1"
    )

    assert signed_in.id == user.id


def test_an_unknown_client_address_throttles_nothing_by_itself(session: Session) -> None:
    user = sign_up(session)
    for attempt in range(5):
        fail(session, f"someone{attempt}@example.com", "")

    signed_in = accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address=""
    )

    assert signed_in.id == user.id


def test_five_failures_from_one_ip_throttle_that_ip_across_emails(session: Session) -> None:
    user = sign_up(session)
    for attempt in range(5):
        fail(session, f"someone{attempt}@example.com", "203.0.113.7")

    with pytest.raises(Throttled) as caught:
        accounts.sign_in(
            session=session, email="ada@example.com", password=PASSWORD, ip_address="203.0.113.7"
        )
    assert 1 <= caught.value.retry_after <= 600

    # Another address is not affected.
    signed_in = accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="198.51.100.1"
    )
    assert signed_in.id == user.id


def test_retry_after_counts_from_the_oldest_recent_failure(session: Session) -> None:
    sign_up(session)
    now = utcnow()
    for minutes_ago in (9, 8, 7, 6, 5):
        session.add(
            SignInFailure(
                email="ada@example.com",
                ip_address="10.0.0.1",
                created_at=now - timedelta(minutes=minutes_ago),
            )
        )
    session.commit()

    with pytest.raises(Throttled) as caught:
        accounts.sign_in(
            session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.9.9"
        )

    # The oldest failure (9 min ago) leaves the 10-minute window in about 60 s.
    assert 55 <= caught.value.retry_after <= 61


def test_failures_older_than_ten_minutes_do_not_count(session: Session) -> None:
    user = sign_up(session)
    old = utcnow() - timedelta(minutes=10, seconds=5)
    for attempt in range(5):
        session.add(
            SignInFailure(
                email="ada@example.com",
                ip_address="203.0.113.7",
                created_at=old - timedelta(seconds=attempt),
            )
        )
    session.commit()

    signed_in = accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="203.0.113.7"
    )

    assert signed_in.id == user.id


def test_old_failures_do_not_top_up_recent_ones(session: Session) -> None:
    sign_up(session)
    now = utcnow()
    for attempt in range(4):
        session.add(
            SignInFailure(
                email="ada@example.com",
                ip_address="10.0.0.1",
                created_at=now - timedelta(minutes=20, seconds=attempt),
            )
        )
    session.commit()
    for attempt in range(4):
        fail(session, "ada@example.com", f"10.0.1.{attempt}")

    # 8 failures in total but only 4 in the window: not throttled.
    fail(session, "ada@example.com", "10.0.2.1")
    # That was the 5th recent one: now throttled.
    with pytest.raises(Throttled):
        accounts.sign_in(
            session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.3.1"
        )


def test_a_failure_prunes_expired_failure_rows(session: Session) -> None:
    session.add(
        SignInFailure(
            email="old@example.com", ip_address="10.0.0.1", created_at=utcnow() - timedelta(hours=1)
        )
    )
    session.commit()

    fail(session, "new@example.com", "10.0.0.2")

    assert failures(session, email="old@example.com") == 0
    assert failures(session, email="new@example.com") == 1


def test_successful_sign_in_clears_that_emails_failures(session: Session) -> None:
    sign_up(session)
    sign_up(session, name="Grace", email="grace@example.com")
    for attempt in range(4):
        fail(session, "ada@example.com", f"10.0.0.{attempt}")
    fail(session, "grace@example.com", "10.0.9.9")

    accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.1.1"
    )

    assert failures(session, email="ada@example.com") == 0
    assert failures(session, email="grace@example.com") == 1
    # The counter really restarted: four more failures still do not throttle.
    for attempt in range(4):
        fail(session, "ada@example.com", f"10.0.2.{attempt}")
    accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.3.1"
    )


# --- rehash --------------------------------------------------------------------


# Weaker than OWASP's minimum, and OWASP's other form of it that the app used before.
OUTDATED_PARAMS = {"m=8192,t=1": (8192, 1), "m=19456,t=2": (19456, 2)}


def signed_up_with_an_outdated_hash(
    session: Session, *, memory_cost: int = 8192, time_cost: int = 1
) -> str:
    """Sign Ada up, then give her a hash made with other argon2 parameters; return it."""
    outdated = CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=memory_cost,
        argon2__time_cost=time_cost,
        argon2__parallelism=1,
    )
    old_hash = outdated.hash(PASSWORD)
    user = sign_up(session)
    user.password_hash = old_hash
    session.add(user)
    session.commit()
    return old_hash


@pytest.mark.parametrize("params", list(OUTDATED_PARAMS), ids=list(OUTDATED_PARAMS))
def test_sign_in_rehashes_a_hash_with_outdated_parameters(session: Session, params: str) -> None:
    memory_cost, time_cost = OUTDATED_PARAMS[params]
    old_hash = signed_up_with_an_outdated_hash(
        session, memory_cost=memory_cost, time_cost=time_cost
    )
    assert f"${params},p=1$" in old_hash

    accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.0.1"
    )

    new_hash = stored_user(session, "ada@example.com").password_hash
    assert new_hash != old_hash
    assert new_hash.startswith(CURRENT_PARAMS)
    assert argon2.verify(PASSWORD, new_hash)


def test_wrong_password_does_not_rehash(session: Session) -> None:
    old_hash = signed_up_with_an_outdated_hash(session)

    fail(session, "ada@example.com", "10.0.0.1")

    assert stored_user(session, "ada@example.com").password_hash == old_hash


def test_current_hash_is_left_alone_on_sign_in(session: Session) -> None:
    original = sign_up(session).password_hash

    accounts.sign_in(
        session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.0.1"
    )

    assert stored_user(session, "ada@example.com").password_hash == original


# --- profile and password changes ------------------------------------------------


def test_rename_validates_and_trims(session: Session) -> None:
    user = sign_up(session)

    assert accounts.rename(session=session, user_id=user.id, name="  Countess  Ada ").name == (
        "Countess Ada"
    )
    with pytest.raises(InvalidInput) as caught:
        accounts.rename(session=session, user_id=user.id, name="  ")
    assert caught.value.code == "INVALID_NAME"
    assert stored_user(session, "ada@example.com").name == "Countess Ada"


def test_change_password_checks_the_current_one(session: Session) -> None:
    user = sign_up(session)

    with pytest.raises(InvalidInput) as caught:
        accounts.change_password(
            session=session,
            user_id=user.id,
            current_password="wrong password",
            new_password="new password",
        )
    assert (caught.value.code, caught.value.field) == ("INVALID_PASSWORD", "current_password")

    with pytest.raises(InvalidInput) as caught:
        accounts.change_password(
            session=session, user_id=user.id, current_password=PASSWORD, new_password="short"
        )
    assert (caught.value.code, caught.value.field) == ("PASSWORD_TOO_SHORT", "new_password")

    accounts.change_password(
        session=session, user_id=user.id, current_password=PASSWORD, new_password="new password"
    )
    with pytest.raises(NotAuthenticated):
        accounts.sign_in(
            session=session, email="ada@example.com", password=PASSWORD, ip_address="10.0.0.1"
        )
    assert (
        accounts.sign_in(
            session=session, email="ada@example.com", password="new password", ip_address="10.0.0.2"
        ).id
        == user.id
    )
