"""Memory per idle tab when the conversations already hold a long history.

The main measurement opens every tab on a new, empty conversation. Here the
same people, conversations and tabs are set up on a second, fresh server of the
same configuration, but every conversation first gets `messages` stored
messages (bulk-loaded into its database, chat-length bodies from several
members); then every tab opens its conversation and the server's memory growth
per tab is measured the same way. A tab shows the newest page of its thread,
so the figure should not depend on how long the history is beyond that page.

Then one more message is sent in every conversation, and once every tab has
it and the sockets are quiet, the memory per tab is read again: an idle tab
has usually received something since it opened.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

from bench.population import Account, Plan

WORDS = (
    "ok sure thanks see you at the meeting tomorrow morning lunch coffee later today "
    "can we move it to friday I think so sounds good let me check the doc and get back "
    "to you on this one the build is green again shipping it now great work everyone"
).split()


def history_rows(
    plan: Plan, accounts: list[Account], conversation_ids: list[int], *, messages: int, seed: int
) -> Iterator[tuple[int, int, str, str]]:
    """`messages` rows per conversation: (conversation_id, sender_id, body, client_message_id).

    Bodies are 2-30 words (about 70 characters on average), sent by the members in turn at random.
    """
    rng = random.Random(seed)
    for members, conversation_id in zip(plan.groups, conversation_ids, strict=True):
        senders = [accounts[user].id for user in members]
        for n in range(messages):
            body = " ".join(rng.choices(WORDS, k=rng.randint(2, 30)))
            yield conversation_id, rng.choice(senders), body, f"history-{conversation_id}-{n}"


def seed_history(
    database_url: str, plan: Plan, accounts: list[Account], conversation_ids: list[int], *, messages: int, seed: int
) -> None:
    """Store `messages` messages in every conversation, straight into the database."""
    from bench.dbbench import bulk_insert_messages
    from chat_app.db import build_engine

    engine = build_engine(database_url)
    try:
        bulk_insert_messages(
            engine, history_rows(plan, accounts, conversation_ids, messages=messages, seed=seed), conversation_ids
        )
    finally:
        engine.dispose()


async def _one_more_message(
    fleet, accounts: list[Account], plan: Plan, conversation_ids: list[int], *, setup: dict
) -> dict:
    """Send one message in every conversation, wait until the sockets are quiet, read the memory again.

    Growth is counted from before any tab opened (`setup`, the first reading), as there.
    """
    from bench.load import _redis_memory, wait_quiet
    from bench.population import api_session

    semaphore = asyncio.Semaphore(8)
    async with api_session(fleet.target.url) as client:

        async def one(members: list[int], conversation_id: int) -> None:
            async with semaphore:
                async with client.post(
                    f"/api/conversations/{conversation_id}/messages",
                    json={"content": "one more message after the history", "client_message_id": f"after-{conversation_id}"},
                    headers={"Authorization": f"Bearer {accounts[members[0]].token}"},
                ) as response:
                    response.raise_for_status()

        await asyncio.gather(*(one(members, cid) for members, cid in zip(plan.groups, conversation_ids, strict=True)))
    await wait_quiet(fleet, quiet=2.0, timeout=60)
    await asyncio.sleep(3)
    rss_after = fleet.tree.rss()
    received = sum(1 for socket in fleet.sockets if socket.thread and "one more message" in socket.thread[-1][1])
    tabs = max(1, len(fleet.sockets))
    after = {
        "tabs_showing_it": received,
        "server_kib_per_client": round((rss_after - setup["server_rss_before_mib"] * 2**20) / 1024 / tabs, 1),
    }
    redis_after = _redis_memory(fleet.target)
    if redis_after is not None and "redis_used_memory_before_mib" in setup:
        after["redis_kib_per_client"] = round(
            (redis_after - setup["redis_used_memory_before_mib"] * 2**20) / 1024 / tabs, 1
        )
    return after


async def measure_history_memory(name: str, args, plan: Plan, work_root: Path, *, messages: int) -> dict:
    """Start configuration `name` afresh, give every conversation a history, open every tab; measure."""
    import time
    import uuid

    from bench.load import LoopLag, close_fleet, connect_fleet
    from bench.population import create_conversations, sign_up_all
    from bench.servers import app_in_config

    print(f"[{name}] memory with history: a fresh server, {messages:,} messages per conversation", flush=True)
    with app_in_config(name, work_root / f"with-history-{messages}") as target:
        started = time.monotonic()
        accounts = await sign_up_all(target.url, plan, uuid.uuid4().hex[:6])
        conversation_ids = await create_conversations(target.url, plan, accounts)
        seed_history(
            target.database_url, plan, accounts, conversation_ids, messages=messages, seed=args.seed
        )
        setup_seconds = time.monotonic() - started
        lag = LoopLag()
        lag.start()
        fleet, setup = await connect_fleet(
            target, plan, accounts, conversation_ids, concurrency=args.connect_concurrency, lag=lag
        )
        try:
            shown = [len(socket.thread) for socket in fleet.sockets]
            setup["messages_per_conversation"] = messages
            setup["setup_seconds"] = round(setup_seconds, 1)
            setup["thread_rows_shown_mean"] = round(sum(shown) / max(1, len(shown)), 1)
            setup["frame_bytes_per_tab"] = round(fleet.tracker.frame_bytes / max(1, len(fleet.sockets)))
            setup["after_one_more_message"] = await _one_more_message(
                fleet, accounts, plan, conversation_ids, setup=setup
            )
        finally:
            await close_fleet(fleet)
            await lag.stop()
    after = setup["after_one_more_message"]
    print(
        f"[{name}] with history: {setup['connected']}/{setup['clients']} open, "
        f"{setup['thread_rows_shown_mean']} messages shown per tab, {setup['server_kib_per_client']} KiB/tab; "
        f"after one more message ({after['tabs_showing_it']} tabs show it) {after['server_kib_per_client']} KiB/tab",
        flush=True,
    )
    return setup
