"""Connecting the tabs, sending at fixed rates, and turning what arrived into figures."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil

from bench.client import (
    BenchSocket,
    Tracker,
    bounded_gather,
    inbox_state_key,
    page_constants,
    thread_state_key,
)
from bench.population import PASSWORD, Account, Plan, api_session
from bench.servers import ProcessTree, Target

GRACE_SECONDS = 10.0
POST_CONCURRENCY = 256


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def summary_ms(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of seconds, in milliseconds."""
    def ms(value):
        if value is None:
            return None
        if value == float("inf"):
            return "inf"  # a delivery that never came
        return round(value * 1000, 2)

    return {
        "n": len(values),
        "p50": ms(percentile(values, 50)),
        "p90": ms(percentile(values, 90)),
        "p99": ms(percentile(values, 99)),
        "max": ms(max(values) if values else None),
    }


class LoopLag:
    """How late this process's event loop wakes up (the load generator's own delay)."""

    def __init__(self, period: float = 0.05):
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            now = time.monotonic()
            self.samples.append((now, now - before - self.period))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def between(self, start: float, end: float) -> dict:
        lags = [lag for at, lag in self.samples if start <= at <= end]
        return summary_ms(lags)


@dataclass
class Fleet:
    """Every tab of one target, with what is needed to send as its users."""

    target: Target
    plan: Plan
    tracker: Tracker
    sockets: list[BenchSocket]
    accounts: list[Account] | None
    conversation_ids: list[int]
    tree: ProcessTree
    lag: LoopLag
    me: psutil.Process = field(default_factory=psutil.Process)
    next_seq: int = 1
    windows: dict = field(default_factory=dict)  # phase -> (start, deadline), monotonic


async def connect_fleet(
    target: Target, plan: Plan, accounts: list[Account] | None, conversation_ids: list[int],
    *, concurrency: int, lag: LoopLag,
) -> tuple[Fleet, dict]:
    """Connect every tab in batches (at most `concurrency` opening at once); measure memory."""
    tree = ProcessTree(target.pid)
    if target.kind == "reflex":
        tracker = Tracker(thread_state_key(), inbox_state_key())
        page = page_constants(target.web_dir)
    else:
        tracker = Tracker(None)
        page = None
    sockets = []
    for index, (user, group) in enumerate(plan.tabs):
        cookie = f"chat_app.session_token={accounts[user].token}" if accounts else None
        sockets.append(
            BenchSocket(
                target.url, index=index, tracker=tracker, cookie=cookie,
                conversation_id=conversation_ids[group], group=group, page=page,
                previews_coalesce=target.kind == "reflex",  # the relay sends every message to every room
            )
        )
    fleet = Fleet(target, plan, tracker, sockets, accounts, conversation_ids, tree, lag)

    await asyncio.sleep(1)
    rss_before = tree.rss()
    redis_before = _redis_memory(target)
    open_times: list[float] = []

    async def open_tab(socket: BenchSocket) -> None:
        started = time.monotonic()
        await socket.connect()
        if target.kind == "relay":
            user = plan.tabs[socket.index][0]
            await socket.emit("join", [str(conversation_ids[g]) for g in plan.user_groups[user]])
        await asyncio.wait_for(socket.ready.wait(), 60)
        open_times.append(time.monotonic() - started)

    started = time.monotonic()
    results = await bounded_gather(
        [lambda socket=socket: open_tab(socket) for socket in sockets],
        concurrency=concurrency, timeout=90,
    )
    connect_seconds = time.monotonic() - started
    failures = [repr(result) for result in results if isinstance(result, BaseException)]
    await asyncio.sleep(3)  # let the last on_load frames and pushes settle
    rss_after = tree.rss()
    redis_after = _redis_memory(target)
    for socket in sockets:
        socket.measuring = True
    # A load generator's own garbage-collection pauses would be measured as latency:
    # everything made so far lives to the end, so take it out of the collector's sight.
    gc.collect()
    gc.freeze()
    connected = sum(1 for socket in sockets if socket._client.connected)
    info = {
        "clients": len(sockets),
        "connected": connected,
        "connect_failures": len(failures),
        "connect_failure_examples": failures[:3],
        "connect_seconds": round(connect_seconds, 1),
        "open_latency_ms": summary_ms(open_times),
        "server_rss_before_mib": round(rss_before / 2**20, 1),
        "server_rss_after_mib": round(rss_after / 2**20, 1),
        "server_kib_per_client": round((rss_after - rss_before) / 1024 / max(1, connected), 1),
    }
    if redis_before is not None:
        info["redis_used_memory_before_mib"] = round(redis_before / 2**20, 2)
        info["redis_used_memory_after_mib"] = round(redis_after / 2**20, 2)
        info["redis_kib_per_client"] = round((redis_after - redis_before) / 1024 / max(1, connected), 1)
    info["server_processes"] = tree.describe()
    return fleet, info


def _redis_memory(target: Target) -> int | None:
    from bench.servers import redis_used_memory

    return redis_used_memory(target.redis_url)


def _redis_cpu(target: Target) -> float | None:
    if not target.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(target.redis_url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


async def close_fleet(fleet: Fleet) -> None:
    fleet.tracker.phase = None  # closing is not a phase's disconnect
    await bounded_gather(
        [lambda socket=socket: socket.close() for socket in fleet.sockets], concurrency=50, timeout=10
    )


class Sender:
    """Sends messages through the target's HTTP endpoint as scheduled, never waiting for answers."""

    def __init__(self, fleet: Fleet, session: aiohttp.ClientSession, seed: int):
        import random

        self.fleet = fleet
        self.session = session
        self.rng = random.Random(seed)
        self.semaphore = asyncio.Semaphore(POST_CONCURRENCY)
        self.tasks: set[asyncio.Task] = set()

    def send(self, t0: float, phase: str) -> None:
        fleet = self.fleet
        plan = fleet.plan
        seq = fleet.next_seq
        fleet.next_seq += 1
        group = self.rng.randrange(len(plan.groups))
        sender = self.rng.choice(plan.groups[group])
        text = f"bench message bm{seq}x from user {sender}"
        message: dict[str, Any] = {
            "t0": t0, "phase": phase, "conv": group, "expected": plan.group_tabs[group], "recv": {},
        }
        fleet.tracker.messages[seq] = message
        for tab in plan.group_tabs[group]:
            socket = fleet.sockets[tab]
            if socket.group != group and socket.previews_coalesce:
                socket.expect_preview(seq, group)
        task = asyncio.ensure_future(self._post(message, seq, group, sender, text))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, message: dict, seq: int, group: int, sender: int, text: str) -> None:
        fleet = self.fleet
        async with self.semaphore:
            try:
                if fleet.target.kind == "reflex":
                    conversation_id = fleet.conversation_ids[group]
                    async with self.session.post(
                        f"{fleet.target.url}/api/conversations/{conversation_id}/messages",
                        json={"content": text, "client_message_id": f"b{seq}"},
                        headers={"Authorization": f"Bearer {fleet.accounts[sender].token}"},
                    ) as response:
                        body = await response.read()
                        ok = response.status in (200, 201)
                        if ok:
                            message["id"] = json.loads(body)["id"]
                            for tab in fleet.plan.group_tabs[group]:
                                socket = fleet.sockets[tab]
                                if socket.group != group and socket.previews_coalesce:
                                    socket.settle_previews(group)
                else:
                    async with self.session.post(
                        f"{fleet.target.url}/broadcast",
                        json={"room": str(fleet.conversation_ids[group]), "text": text},
                    ) as response:
                        await response.read()
                        ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError) as error:
                ok = False
                message["error"] = repr(error)
        message["post_done"] = time.monotonic()
        message["ok"] = ok

    async def drain(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)


async def sign_in_once(client: aiohttp.ClientSession, account: Account) -> float:
    """One sign-in through the API; its latency in seconds."""
    started = time.monotonic()
    async with client.post(
        "/api/auth/sign-in/email", json={"email": account.email, "password": PASSWORD}
    ) as response:
        response.raise_for_status()
        await response.read()
    return time.monotonic() - started


async def sequential_sign_ins(fleet: Fleet, n: int) -> dict:
    async with api_session(fleet.target.url) as client:
        times = [await sign_in_once(client, fleet.accounts[i % len(fleet.accounts)]) for i in range(n)]
    return summary_ms(times)


async def run_phase(
    fleet: Fleet, sender: Sender, *, label: str, rate: float, seconds: float,
    storm_every: float | None = None, storm_size: int = 20,
) -> dict:
    """Send `rate` messages/s for `seconds`, then wait up to GRACE_SECONDS for deliveries."""
    tracker = fleet.tracker
    # The previous phase's backlog must not be measured as this one's.
    drained = await wait_quiet(fleet, quiet=2.0, timeout=300.0)
    tracker.phase = label
    frames0, bytes0 = tracker.frames, tracker.frame_bytes
    cpu0, me0 = fleet.tree.cpu_seconds(), _own_cpu(fleet.me)
    machine0 = psutil.cpu_times()
    redis_cpu0 = _redis_cpu(fleet.target)
    storms: list[dict] = []
    storm_tasks = []
    http_client = api_session(fleet.target.url) if storm_every else None

    async def storm(number: int) -> None:
        accounts = [fleet.accounts[(number * storm_size + i) % len(fleet.accounts)] for i in range(storm_size)]
        started = time.monotonic()
        times = await asyncio.gather(*(sign_in_once(http_client, a) for a in accounts), return_exceptions=True)
        ended = time.monotonic()
        ok = [t for t in times if isinstance(t, float)]
        storms.append({"start": started, "end": ended, "sign_in_ms": summary_ms(ok), "errors": len(times) - len(ok)})

    count = int(round(rate * seconds))
    interval = 1.0 / rate
    start = time.monotonic() + 0.05
    next_storm = start + storm_every / 2 if storm_every else None
    storm_number = 0
    for k in range(count):
        t0 = start + k * interval
        delay = t0 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if next_storm is not None and t0 >= next_storm:
            storm_tasks.append(asyncio.ensure_future(storm(storm_number)))
            storm_number += 1
            next_storm += storm_every
        sender.send(t0, label)
    send_end = start + count * interval
    if send_end > time.monotonic():
        await asyncio.sleep(send_end - time.monotonic())
    cpu1, me1 = fleet.tree.cpu_seconds(), _own_cpu(fleet.me)
    machine1 = psutil.cpu_times()
    redis_cpu1 = _redis_cpu(fleet.target)
    frames1, bytes1 = tracker.frames, tracker.frame_bytes
    wall = time.monotonic() - start
    # Wait for the answers and the deliveries (at most GRACE_SECONDS after the last send).
    deadline = send_end + GRACE_SECONDS
    phase_messages = [m for m in tracker.messages.values() if m["phase"] == label]
    while time.monotonic() < deadline:
        pending = sum(1 for m in phase_messages if "ok" not in m or (m["ok"] and len(m["recv"]) < len(m["expected"])))
        if not pending:
            break
        await asyncio.sleep(0.2)
    if storm_tasks:
        await asyncio.gather(*storm_tasks)
    if http_client is not None:
        await http_client.close()
    await sender.drain(120)  # every POST answered (deliveries after `deadline` count as lost)
    result = phase_figures(phase_messages, label=label, rate=rate, seconds=seconds, start=start, deadline=deadline)
    result["latency_within_grace_ms"] = result["latency_ms"]
    fleet.windows[label] = (start, deadline)
    result["waited_for_quiet_before_s"] = round(drained, 1)
    result["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / wall, 1)
    result["loadgen_cpu_pct"] = round(100 * (me1 - me0) / wall, 1)
    busy = sum(getattr(machine1, f) - getattr(machine0, f) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    result["machine_cpu_pct"] = round(100 * busy / wall, 1)  # of psutil.cpu_count() * 100
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    if redis_cpu0 is not None:
        result["redis_cpu_pct"] = round(100 * (redis_cpu1 - redis_cpu0) / wall, 1)
    result["frames_per_s"] = round((frames1 - frames0) / wall, 1)
    result["frame_kib_per_s"] = round((bytes1 - bytes0) / 1024 / wall, 1)
    result["mean_frame_bytes"] = round((bytes1 - bytes0) / max(1, frames1 - frames0))
    result["loadgen_loop_lag_ms"] = fleet.lag.between(start, send_end)
    counters = tracker.counters.get(label, {})
    result["duplicates"] = counters.get("duplicates", 0)
    result["stale_frames"] = counters.get("stale_frames", 0)
    result["disconnects"] = counters.get("disconnects", 0)
    result["unexpected_deliveries"] = tracker.unexpected.get(label, 0)
    if storms:
        result["storms"] = _storm_effect(phase_messages, storms)
        result["storms"]["_windows"] = storms
    return result


def _own_cpu(me: psutil.Process) -> float:
    times = me.cpu_times()
    return times.user + times.system


def phase_figures(messages: list[dict], *, label: str, rate: float, seconds: float, start: float, deadline: float) -> dict:
    ok = [m for m in messages if m.get("ok")]
    expected = sum(len(m["expected"]) for m in ok)
    latencies, last = [], start
    for m in ok:
        for t in m["recv"].values():
            if t <= deadline:
                latencies.append(t - m["t0"])
                last = max(last, t)
    delivered = len(latencies)
    superseded = sum(len(m.get("superseded", ())) for m in ok)
    previews = sum(len(m.get("preview", ())) for m in ok)
    post_times = [m["post_done"] - m["t0"] for m in messages if "post_done" in m]
    return {
        "phase": label,
        "offered_sends_per_s": rate,
        "seconds": seconds,
        "sends": len(messages),
        "post_errors": len(messages) - len(ok),
        "post_error_examples": [m.get("error") for m in messages if not m.get("ok")][:3],
        "post_latency_ms": summary_ms(post_times),
        "expected_deliveries": expected,
        "offered_deliveries_per_s": round(expected / seconds, 1),
        "achieved_deliveries_per_s": round(delivered / max(1e-9, last - start), 1),
        "delivered": delivered,
        "lost": expected - delivered,
        "latency_ms": summary_ms(latencies),  # replaced by finalize() with every delivery
        "delivered_as_list_preview": previews,
        "of_which_superseded_by_a_newer_message": superseded,
    }


def _storm_effect(messages: list[dict], storms: list[dict]) -> dict:
    """Delivery latency of messages sent during a sign-in storm (until 1 s after it) vs the rest
    (deliveries received so far)."""
    windows = [(s["start"], s["end"] + 1.0) for s in storms]
    inside, outside = [], []
    slowest_inside = []  # (latency, storm number, seconds after that storm began)
    for m in messages:
        if not m.get("ok"):
            continue
        storm = next((i for i, (a, b) in enumerate(windows) if a <= m["t0"] <= b), None)
        for t in m["recv"].values():
            if storm is None:
                outside.append(t - m["t0"])
            else:
                inside.append(t - m["t0"])
                slowest_inside.append((t - m["t0"], storm, m["t0"] - windows[storm][0]))
    slowest_inside.sort(reverse=True)
    return {
        "storms": len(storms),
        "storm_seconds": [round(s["end"] - s["start"], 2) for s in storms],
        "sign_in_ms_during_storm": [s["sign_in_ms"] for s in storms],
        "sign_in_errors": sum(s["errors"] for s in storms),
        "delivery_ms_during_storm": summary_ms(inside),
        "delivery_ms_outside_storm": summary_ms(outside),
        # Where the worst 1 % inside the storms fell: which storm, how long after it began.
        "slowest_during_storm": [
            {"ms": round(1000 * latency, 1), "storm": storm, "sent_after_start_s": round(after, 3)}
            for latency, storm, after in slowest_inside[: max(1, len(slowest_inside) // 100)]
        ],
    }


async def wait_quiet(fleet: Fleet, *, quiet: float = 3.0, timeout: float = 300.0) -> float:
    """Wait until no frame has arrived for `quiet` seconds; returns how long it took."""
    started = time.monotonic()
    last_count, last_change = fleet.tracker.frames, time.monotonic()
    while time.monotonic() - started < timeout:
        await asyncio.sleep(0.25)
        if fleet.tracker.frames != last_count:
            last_count, last_change = fleet.tracker.frames, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
    return time.monotonic() - started


def finalize(fleet: Fleet, phase_results: list[dict]) -> None:
    """Once the server is quiet: each phase's figures over every delivery, however late.

    `latency_ms` covers every expected delivery of the phase (one that never came
    counts as infinitely late, so a percentile that falls on one reads "inf"),
    `latency_within_grace_ms` only those seen within GRACE_SECONDS of the phase's
    end (survivors only: optimistic when some were lost). `achieved_deliveries_per_s`
    is what the server got through: all deliveries over the time from the phase's
    first send to its last delivery (the next phase starts only once the server
    is quiet, so the backlog is this phase's).
    """
    by_phase: dict[str, list[dict]] = {}
    for m in fleet.tracker.messages.values():
        by_phase.setdefault(m["phase"], []).append(m)
    for result in phase_results:
        label = result["phase"]
        start, _deadline = fleet.windows[label]
        messages = [m for m in by_phase.get(label, []) if m.get("ok")]
        latencies: list[float] = []
        last = start
        for m in messages:
            for t in m["recv"].values():
                latencies.append(t - m["t0"])
                last = max(last, t)
        delivered = len(latencies)
        never = sum(len(m["expected"]) for m in messages) - delivered
        result["never_delivered"] = never
        # A tab showing the message's conversation must show it in the thread: one missing
        # there is lost. A tab showing another conversation sees it only as its list row's
        # preview, which shows the newest message by id alone; a message counts as seen
        # there once the row showed it or one stored after it (a higher id; BenchSocket),
        # so one still missing here is a row that never moved past it.
        never_in_thread = sum(
            1
            for m in messages
            for tab in m["expected"]
            if tab not in m["recv"] and fleet.sockets[tab].group == m["conv"]
        )
        result["never_in_thread"] = never_in_thread
        result["never_as_list_preview"] = never - never_in_thread
        result["delivered_eventually"] = delivered
        result["latency_ms"] = summary_ms(latencies + [float("inf")] * never)
        result["achieved_deliveries_per_s"] = round(delivered / max(1e-9, last - start), 1)
        result["last_delivery_after_phase_end_s"] = round(last - start - result["seconds"], 1)
        result["delivered_as_list_preview"] = sum(len(m.get("preview", ())) for m in messages)
        result["of_which_superseded_by_a_newer_message"] = sum(len(m.get("superseded", ())) for m in messages)
        # Frames of a phase that arrived after its figures were taken count for it too.
        counters = fleet.tracker.counters.get(label, {})
        result["duplicates"] = counters.get("duplicates", 0)
        result["stale_frames"] = counters.get("stale_frames", 0)
        result["disconnects"] = counters.get("disconnects", 0)
        result["events_sent_back_by_tabs"] = counters.get("events_sent_back", 0)
        result["unexpected_deliveries"] = fleet.tracker.unexpected.get(label, 0)
        for name in ("duplicates", "stale_frames"):
            examples = fleet.tracker.examples.get(f"{label}:{name}")
            if examples:
                result[f"{name}_examples"] = examples
        if "storms" in result:
            result["storms"].update(_storm_effect(messages, result["storms"]["_windows"]))


def check_threads(fleet: Fleet) -> dict:
    """After load: does every open tab's thread equal the database's newest window, and does
    every row of its conversation list show the database's newest message and unread count?"""
    from sqlalchemy import create_engine, text

    from bench.client import THREAD_WINDOW_KEEP, THREAD_WINDOW_MAX
    from chat_app.domain.conversations import preview

    engine = create_engine(fleet.target.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT conversation_id, id, body, sender_id FROM message ORDER BY conversation_id, id")
            ).all()
            read_positions = {
                (user_id, conversation_id): position
                for user_id, conversation_id, position in connection.execute(
                    text("SELECT user_id, conversation_id, last_read_message_id FROM conversation_member")
                )
            }
    finally:
        engine.dispose()
    stored: dict[int, list[tuple[int, str]]] = {}
    senders: dict[int, list[tuple[int, int]]] = {}
    for conversation_id, message_id, body, sender_id in rows:
        stored.setdefault(conversation_id, []).append((message_id, body))
        senders.setdefault(conversation_id, []).append((message_id, sender_id))

    def expected_row(user_id: int, conversation_id: int) -> tuple[str, int]:
        messages = stored.get(conversation_id, [])
        last_read = read_positions.get((user_id, conversation_id), 0)
        unread = sum(
            1 for message_id, sender in senders.get(conversation_id, [])
            if message_id > last_read and sender != user_id
        )
        return (preview(messages[-1][1]) if messages else "", unread)

    mismatched, disconnected, examples = 0, 0, []
    rows_checked, wrong_previews, wrong_unread, row_examples = 0, 0, 0, []
    for socket in fleet.sockets:
        if socket.disconnected:
            disconnected += 1
            continue
        expected = stored.get(socket.conversation_id, [])
        shown = len(socket.thread)
        if len(expected) > THREAD_WINDOW_MAX and THREAD_WINDOW_KEEP <= shown <= THREAD_WINDOW_MAX:
            expected = expected[-shown:]  # a full window drops its oldest rows, 100 at once
        if socket.thread != expected:
            mismatched += 1
            if len(examples) < 5:
                have = {i for i, _ in socket.thread}
                want = {i for i, _ in expected}
                examples.append({
                    "client": socket.index,
                    "conversation_id": socket.conversation_id,
                    "client_len": len(socket.thread),
                    "db_len": len(expected),
                    "missing": sorted(want - have)[:5],
                    "extra": sorted(have - want)[:5],
                    "same_set_wrong_order": have == want,
                })
        if fleet.accounts is None:
            continue
        user_id = fleet.accounts[fleet.plan.tabs[socket.index][0]].id
        for conversation_id, (shown_preview, shown_unread) in socket.rows.items():
            rows_checked += 1
            want_preview, want_unread = expected_row(user_id, conversation_id)
            wrong = []
            if shown_preview != want_preview:
                wrong_previews += 1
                wrong.append("preview")
            if shown_unread != want_unread:
                wrong_unread += 1
                wrong.append("unread")
            if wrong and len(row_examples) < 5:
                row_examples.append({
                    "client": socket.index, "conversation_id": conversation_id, "wrong": wrong,
                    "shown": [shown_preview[:40], shown_unread], "db": [want_preview[:40], want_unread],
                    "open_conversation": socket.conversation_id,
                })
    lists_right = wrong_previews == 0 and wrong_unread == 0 and rows_checked > 0
    return {
        "clients_checked": len(fleet.sockets) - disconnected,
        "disconnected": disconnected,
        "mismatched": mismatched,
        "equal": mismatched == 0 and disconnected == 0,
        "examples": examples,
        "messages_in_db": len(rows),
        "list_rows_checked": rows_checked,
        "list_wrong_previews": wrong_previews,
        "list_wrong_unread": wrong_unread,
        "lists_right": lists_right,
        "list_examples": row_examples,
    }


def cpu_count() -> int:
    return os.cpu_count() or 1


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
