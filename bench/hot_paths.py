"""CPU of the two paths every message takes many times, measured alone (no server, no load).

    python -m bench.hot_paths [--pushes 2000] [--calls 2000] [--no-postgres]

- Pushes: every tab of a conversation's members runs the thread's and the
  list's receivers for each message (`_on_conversation_changed` of
  `ThreadState` and `InboxState`). Here they run on the app's real state tree,
  in Reflex's prod mode, for one tab showing 10, 50 and 100 messages, and the
  CPU time per push is printed (the best of five rounds: the machine's noise
  only ever adds).
- API calls: each authenticates its session before its work
  (`sessions.authenticated_user_id`, one statement), against a fresh SQLite
  database and a throwaway PostgreSQL one; the ORM look-up the socket guard and
  the session endpoints use (`sessions.authenticate`) is timed beside it.

Figures move with the machine; compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("REFLEX_ENV_MODE", "prod")  # as served: shallow type checks on assignment

ROUNDS = 5
CONVERSATION, ME, OTHER = 42, 7, 8
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _best_of(rounds: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(rounds))


def _push_cpu_us(shown: int, pushes: int) -> float:
    from reflex.state import State

    import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
    from chat_app.domain.conversations import MessageView
    from chat_app.realtime import read_receipts
    from chat_app.states.inbox import InboxState
    from chat_app.states.session import SessionState
    from chat_app.states.thread import ThreadState, message_row

    def view(message_id: int) -> MessageView:
        return MessageView(
            id=message_id,
            conversation_id=CONVERSATION,
            sender_id=OTHER,
            sender_name="Other Person",
            body=f"bench message bm{message_id}x from user {OTHER}",
            client_message_id=f"b{message_id}",
            created_at=T0 + timedelta(milliseconds=message_id),
        )

    root = State(_reflex_internal_init=True)
    root.get_substate(SessionState.get_full_name().split(".")).user_id = ME
    inbox = root.get_substate(InboxState.get_full_name().split("."))
    thread = root.get_substate(ThreadState.get_full_name().split("."))
    thread.conversation_id = CONVERSATION
    thread._show([message_row(view(i)) for i in range(1, shown + 1)])
    inbox.loaded = True
    inbox.rows = [
        {
            "id": CONVERSATION,
            "title": "Other Person",
            "initials": "OP",
            "is_group": False,
            "preview": "",
            "preview_is_mine": False,
            "last_activity_at": "",
            "has_messages": True,
            "last_message_id": shown,
            "unread": 0,
            "search_text": "other person",
            "href": f"/messages/{CONVERSATION}",
        }
    ]
    inbox._counted_from = {CONVERSATION: (shown, shown)}
    read_receipts.FLUSH_DELAY_SECONDS = 3600  # the batched database write is not timed here
    newest = shown

    async def one_round() -> float:
        nonlocal newest
        spent = 0.0
        for _ in range(pushes):
            newest += 1
            payload = {
                "conversation_id": CONVERSATION,
                "sender_id": OTHER,
                "message": view(newest),
                "previous_message_id": newest - 1,
                "unread_by_member": {ME: 1, OTHER: 0},
                "read_position_by_member": {ME: newest - 1, OTHER: newest},
            }
            start = time.process_time()
            await thread._on_conversation_changed(payload)
            await inbox._on_conversation_changed(payload)
            spent += time.process_time() - start
            root._clean()
            if newest % 10 == 0:  # back to `shown` rows, outside the timing
                thread._show(thread._shown()[-shown:])
                root._clean()
        return spent / pushes * 1e6

    loop = asyncio.new_event_loop()
    try:
        return min(loop.run_until_complete(one_round()) for _ in range(ROUNDS))
    finally:
        pending = asyncio.all_tasks(loop)  # the read receipts' flush, never due
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def _auth_cpu_us(database_url: str, calls: int) -> dict[str, float]:
    from sqlmodel import Session

    from chat_app.db import build_engine
    from chat_app.domain import sessions
    from chat_app.models import User
    from tests.support.server import migrate

    migrate(database_url)
    engine = build_engine(database_url)
    try:
        with Session(engine) as session:
            user = User(
                email="hot-paths@example.com",
                name="Hot Paths",
                password_hash="x",
                created_at=T0,
                updated_at=T0,
            )
            session.add(user)
            session.commit()
            _, token = sessions.create_session(session=session, user_id=user.id)

        def timed(look_up: Callable[..., object]) -> Callable[[], float]:
            def one_round() -> float:
                start = time.process_time()
                for _ in range(calls):
                    with Session(engine) as session:  # as `run_in_session` does
                        look_up(session=session, token=token, commit=False)
                        session.commit()
                return (time.process_time() - start) / calls * 1e6

            return one_round

        figures = {}
        for name, look_up in (
            ("authenticated_user_id", sessions.authenticated_user_id),
            ("authenticate (ORM objects)", sessions.authenticate),
        ):
            timed(look_up)()  # warm the statement caches
            figures[name] = _best_of(ROUNDS, timed(look_up))
        return figures
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Print the CPU per push and per API call's authentication."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=2000, help="pushes per round")
    parser.add_argument("--calls", type=int, default=2000, help="authentications per round")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)

    print(f"CPU per push, both receivers, one tab (best of {ROUNDS} x {args.pushes}):")
    for shown in (10, 50, 100):
        print(f"  {shown:>3} messages shown: {_push_cpu_us(shown, args.pushes):6.1f} µs")

    print(f"CPU per API call's authentication, with its commit (best of {ROUNDS} x {args.calls}):")
    with tempfile.TemporaryDirectory() as folder:
        databases = [("SQLite", f"sqlite:///{Path(folder) / 'hot_paths.db'}", None)]
        if not args.no_postgres:
            databases.append(("PostgreSQL", None, "postgres"))
        for label, url, kind in databases:
            if kind == "postgres":
                from bench.servers import POSTGRES_URL
                from tests.support.databases import temporary_postgres_database

                with temporary_postgres_database(POSTGRES_URL) as url:
                    figures = _auth_cpu_us(url, args.calls)
            else:
                figures = _auth_cpu_us(url, args.calls)
            for name, value in figures.items():
                print(f"  {label:<10} {name:<27} {value:6.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
