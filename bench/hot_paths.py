"""CPU of the two paths every message takes many times, measured alone (no server, no load).

    python -m bench.hot_paths [--pushes 2000] [--calls 2000] [--no-postgres]

- Pushes: every tab of a conversation's members runs the thread's and the
  list's receivers for each message (`_on_conversation_changed` of
  `ThreadState` and `InboxState`), and Reflex then computes the tab's delta
  and encodes the frame it sends. Here they run on the app's real state tree,
  in Reflex's prod mode, for one tab showing 10, 50 and 100 messages and
  listing 1, 50 and 200 conversations; the CPU time per push is printed (the
  best of five rounds: the machine's noise only ever adds), without and with
  the delta and frame, and the frame's size.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("REFLEX_ENV_MODE", "prod")  # as served: shallow type checks on assignment

ROUNDS = 5
CONVERSATION, ME, OTHER = 42, 7, 8
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _best_of(rounds: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(rounds))


@dataclass(frozen=True)
class PushCost:
    """One push to one tab: the receivers' CPU, with Reflex's delta and frame, and its size."""

    receivers_us: float
    with_frame_us: float
    frame_bytes: float


def _push_cost(shown: int, listed: int, pushes: int, *, to_last_listed: bool = False) -> PushCost:
    """Push `pushes` messages to a tab showing `shown` messages and listing `listed` conversations.

    The messages go to the conversation the tab shows (the first listed), or with
    `to_last_listed` each to the conversation listed last (the list's worst case:
    it moves to the top past every other row).
    """
    from reflex.state import State, StateUpdate
    from reflex_base.utils import format

    import chat_app.chat_app  # noqa: F401  (builds the app's state tree)
    from chat_app.domain.conversations import MessageView
    from chat_app.realtime import read_receipts
    from chat_app.states.inbox import InboxState
    from chat_app.states.session import SessionState
    from chat_app.states.thread import ThreadState, message_row

    def view(conversation_id: int, message_id: int) -> MessageView:
        return MessageView(
            id=message_id,
            conversation_id=conversation_id,
            sender_id=OTHER,
            sender_name="Other Person",
            body=f"bench message bm{message_id}x from user {OTHER}",
            client_message_id=f"b{message_id}",
            created_at=T0 + timedelta(milliseconds=message_id),
        )

    def list_row(conversation_id: int, position: int) -> dict:
        return {
            "id": conversation_id,
            "title": f"Person {conversation_id}",
            "initials": "PP",
            "is_group": False,
            "preview": "an earlier message of this conversation",
            "preview_is_mine": False,
            "last_activity_at": (T0 - timedelta(minutes=position)).isoformat(),
            "has_messages": True,
            "last_message_id": shown,
            "unread": 0,
            "search_text": f"person {conversation_id} person{conversation_id}@example.com",
            "href": f"/messages/{conversation_id}",
        }

    root = State(_reflex_internal_init=True)
    root.get_substate(SessionState.get_full_name().split(".")).user_id = ME
    inbox = root.get_substate(InboxState.get_full_name().split("."))
    thread = root.get_substate(ThreadState.get_full_name().split("."))
    thread.conversation_id = CONVERSATION
    thread._show([message_row(view(CONVERSATION, i)) for i in range(1, shown + 1)])
    inbox.loaded = True
    conversation_ids = [CONVERSATION + position for position in range(listed)]
    inbox._show([list_row(cid, position) for position, cid in enumerate(conversation_ids)])
    inbox._counted_from = {cid: (shown, shown) for cid in conversation_ids}
    read_receipts.FLUSH_DELAY_SECONDS = 3600  # the batched database write is not timed here
    root._clean()
    newest = {cid: shown for cid in conversation_ids}

    async def one_round() -> tuple[float, float, float]:
        receivers = with_frame = 0.0
        frame_bytes = 0
        for _ in range(pushes):
            conversation_id = inbox._listed()[-1]["id"] if to_last_listed else CONVERSATION
            newest[conversation_id] += 1
            message_id = newest[conversation_id]
            payload = {
                "conversation_id": conversation_id,
                "sender_id": OTHER,
                "message": view(conversation_id, message_id),
                "previous_message_id": message_id - 1,
                "unread_by_member": {ME: 1, OTHER: 0},
                "read_position_by_member": {ME: message_id - 1, OTHER: message_id},
            }
            start = time.process_time()
            await thread._on_conversation_changed(payload)
            await inbox._on_conversation_changed(payload)
            received = time.process_time()
            frame = format.json_dumps(StateUpdate(delta=await root._get_resolved_delta()))
            root._clean()
            done = time.process_time()
            receivers += received - start
            with_frame += done - start
            frame_bytes += len(frame.encode())
            if message_id % 10 == 0 and conversation_id == CONVERSATION:
                thread._show(thread._shown()[-shown:])  # back to `shown` rows, untimed
                root._clean()
        return receivers / pushes * 1e6, with_frame / pushes * 1e6, frame_bytes / pushes

    loop = asyncio.new_event_loop()
    try:
        rounds = [loop.run_until_complete(one_round()) for _ in range(ROUNDS)]
    finally:
        pending = asyncio.all_tasks(loop)  # the read receipts' flush, never due
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    return PushCost(
        receivers_us=min(r[0] for r in rounds),
        with_frame_us=min(r[1] for r in rounds),
        frame_bytes=rounds[-1][2],
    )


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

    print(f"CPU per push to one tab (best of {ROUNDS} x {args.pushes}):")
    print("  shown  listed  pushed to        receivers  + delta and frame  frame bytes")
    cases = [(10, 1, False), (50, 1, False), (100, 1, False)]
    cases += [(50, 50, False), (50, 200, False), (50, 50, True), (50, 200, True)]
    for shown, listed, to_last in cases:
        cost = _push_cost(shown, listed, args.pushes, to_last_listed=to_last)
        target = "the last listed" if to_last else "the open thread"
        print(
            f"  {shown:>5}  {listed:>6}  {target:<15}  {cost.receivers_us:7.1f} µs"
            f"  {cost.with_frame_us:13.1f} µs  {cost.frame_bytes:11,.0f}"
        )

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
