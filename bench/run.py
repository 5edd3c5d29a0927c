"""Benchmark: message delivery to many open tabs, the app in named configurations vs a bare relay.

    python -m bench.run [--config sqlite-1|pg-redis-2|all] [--clients 1000] [--seconds 20]
                        [--rates 50,200] [--quick] [--no-relay] [--no-db] [--profile]

For each configuration the app is started by itself (tests.support.server.AppServer,
`reflex run --env prod` on a free port with its own database and web dir):

- sqlite-1: SQLite in a temporary folder, Reflex state in memory, one worker;
- pg-redis-N: a fresh PostgreSQL database (CREATE DATABASE, dropped at the end),
  a free Redis index (flushed before and after) for socket owners, open tabs and
  pushes handed between workers, N workers; each tab's state in its worker's memory.

Users sign up and create conversations of 2–10 members through the HTTP API;
then every tab connects (cookie `chat_app.session_token`) and opens
/messages/{id} exactly as Chromium does (see bench/compare_frames.py). Messages
are sent with `POST /api/conversations/{id}/messages` at fixed rates; every open
tab of every member (the sender's own included) must receive each one. The
same tabs and rooms are then measured against the bare python-socketio relay
(bench/relay.py). Also: sign-in latency and a storm of concurrent sign-ins
during 50 sends/s, twice the sustained rate with a final check that every
tab's thread equals the database, and database-only history-page and commit
timings. Memory per tab is measured once more on a fresh server whose
conversations already hold a long history (bench/history.py). Writes
bench/results/<timestamp>.json and .png; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="all", help="sqlite-1, pg-redis-N, a comma-separated list, or all")
    parser.add_argument("--clients", type=int, help="open tabs (default 1000; 100 with --quick)")
    parser.add_argument("--seconds", type=float, help="seconds per rate (default 20; 5 with --quick)")
    parser.add_argument("--rates", default="50,200", help="offered sends/s, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 tabs, 5 s phases, 100k-row history")
    parser.add_argument("--history-rows", type=int, help="messages in the big history conversation (default 1,000,000; 100,000 with --quick)")
    parser.add_argument(
        "--history-messages", default="1000",
        help="memory per tab again on a fresh server whose conversations hold this many messages each; "
        "a comma-separated list measures each (0: skip)",
    )
    parser.add_argument("--no-relay", action="store_true", help="skip the bare relay baseline")
    parser.add_argument("--no-db", action="store_true", help="skip the database-only figures")
    parser.add_argument("--no-overload", action="store_true", help="skip the overload phase and final check")
    parser.add_argument("--no-storm", action="store_true", help="skip the sign-in storm phase")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the highest-rate phase")
    parser.add_argument("--connect-concurrency", type=int, default=20, help="tabs opening at once")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.clients = args.clients or (100 if args.quick else 1000)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.history_rows = args.history_rows or (100_000 if args.quick else 1_000_000)
    args.rate_list = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    args.history_list = [int(n) for n in args.history_messages.split(",") if n.strip() and int(n) > 0]
    return args


def _stop_on_sigterm() -> None:
    """SIGTERM stops the run like Ctrl-C: servers stopped, databases dropped, results written.

    A second SIGTERM during that clean-up is ignored, so the clean-up is not cut short.
    """

    def handler(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"received signal {signum}: stopping, cleaning up and writing what was measured", file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


async def measure_reflex(name: str, args, plan, work_root: Path, stamp: str) -> dict:
    from bench.load import (
        POST_CONCURRENCY,
        LoopLag,
        Sender,
        check_threads,
        close_fleet,
        connect_fleet,
        finalize,
        sequential_sign_ins,
        wait_quiet,
    )
    from bench.population import api_session, create_conversations, sign_up_all
    from bench.servers import app_in_config, py_spy

    entry: dict = {"name": name, "kind": "reflex"}
    print(f"[{name}] starting the app", flush=True)
    with app_in_config(name, work_root) as target:
        entry["info"] = target.info
        started = time.monotonic()
        run_id = uuid.uuid4().hex[:6]
        accounts = await sign_up_all(target.url, plan, run_id)
        conversation_ids = await create_conversations(target.url, plan, accounts)
        entry["setup_seconds"] = round(time.monotonic() - started, 1)
        print(f"[{name}] {len(accounts)} users, {len(conversation_ids)} conversations in {entry['setup_seconds']} s; connecting {len(plan.tabs)} tabs", flush=True)
        lag = LoopLag()
        lag.start()
        fleet, setup = await connect_fleet(
            target, plan, accounts, conversation_ids, concurrency=args.connect_concurrency, lag=lag
        )
        entry["setup"] = setup
        print(f"[{name}] {setup['connected']}/{setup['clients']} open in {setup['connect_seconds']} s, {setup['server_kib_per_client']} KiB/tab", flush=True)
        try:
            entry["sign_in_sequential_ms"] = await sequential_sign_ins(fleet, 30)
            phases = []
            async with api_session(target.url, limit=POST_CONCURRENCY) as session:
                sender = Sender(fleet, session, seed=args.seed)
                for rate in args.rate_list:
                    profiler = None
                    if args.profile and rate == max(args.rate_list):
                        output = args.results_dir / f"{stamp}-{name}-{rate:g}.pyspy.txt"
                        profiler = py_spy(target.pid, int(args.seconds), output)
                        entry["profile"] = str(output)
                    phases.append(await _phase(fleet, sender, f"{rate:g}/s", rate, args.seconds))
                    if profiler is not None:
                        profiler.wait(timeout=60)
                if not args.no_storm:
                    phases.append(await _phase(fleet, sender, "50+storm", 50.0, args.seconds, storm_every=5.0))
                if not args.no_overload:
                    await wait_quiet(fleet, quiet=2.0, timeout=300)
                    finalize(fleet, phases)  # throughput including each phase's backlog
                    sustained = sustained_rate(phases, plan)
                    rate = max(2.0, round(2 * sustained))
                    print(f"[{name}] sustained about {sustained:.0f} sends/s: overload at {rate:g} sends/s", flush=True)
                    phases.append(await _phase(fleet, sender, "overload", float(rate), args.seconds))
                    await sender.drain(120)
                    quiet = await wait_quiet(fleet)
                    threads = check_threads(fleet)
                    entry["overload"] = {
                        "sustained_sends_per_s": round(sustained, 1), "rate": rate,
                        "quiet_after_s": round(quiet, 1), "threads": threads,
                    }
                    print(
                        f"[{name}] after load: threads equal the database: {threads['equal']} ({threads['mismatched']} mismatched); "
                        f"list rows right: {threads['lists_right']} ({threads['list_rows_checked']} rows, "
                        f"{threads['list_wrong_previews']} wrong previews, {threads['list_wrong_unread']} wrong unread counts)",
                        flush=True,
                    )
                await sender.drain(120)
                # "never delivered" is only meaningful once the server has worked off its backlog
                entry["final_wait_for_quiet_s"] = round(await wait_quiet(fleet, quiet=2.0, timeout=300), 1)
                finalize(fleet, phases)
            entry["phases"] = phases
        finally:
            await close_fleet(fleet)
            await lag.stop()
            entry["server_log_errors"] = _log_errors(target.log_path)
    return entry


async def _phase(fleet, sender, label: str, rate: float, seconds: float, storm_every: float | None = None) -> dict:
    from bench.load import run_phase

    result = await run_phase(fleet, sender, label=label, rate=rate, seconds=seconds, storm_every=storm_every)
    latency = result["latency_ms"]
    print(
        f"  {fleet.target.name} {label}: {result['achieved_deliveries_per_s']:.0f}/{result['offered_deliveries_per_s']:.0f} dlv/s, "
        f"p50/p90/p99/max {latency['p50']}/{latency['p90']}/{latency['p99']}/{latency['max']} ms, lost {result['lost']}, "
        f"dup {result['duplicates']}, stale {result['stale_frames']}, server cpu {result['server_cpu_pct']}%, "
        f"loadgen cpu {result['loadgen_cpu_pct']}%",
        flush=True,
    )
    return result


def sustained_rate(phases: list[dict], plan) -> float:
    """The highest send rate delivered in full and on time, or the rate actually achieved when overloaded."""
    best = 0.0
    for phase in phases:
        if phase["phase"].endswith("storm") or not phase["sends"]:
            continue
        fanout = phase["expected_deliveries"] / max(1, phase["sends"] - phase["post_errors"]) or plan.mean_fanout
        kept_up = (
            phase["lost"] == 0
            and phase.get("never_delivered", 0) == 0
            and phase["post_errors"] == 0
            and phase["achieved_deliveries_per_s"] >= 0.95 * phase["offered_deliveries_per_s"]
        )
        if kept_up:
            best = max(best, phase["offered_sends_per_s"])
        else:
            best = max(best, phase["achieved_deliveries_per_s"] / fanout)
    return best or 1.0


async def measure_relay(args, plan, work_root: Path) -> dict:
    from bench.load import (
        POST_CONCURRENCY,
        LoopLag,
        Sender,
        close_fleet,
        connect_fleet,
        finalize,
        wait_quiet,
    )
    from bench.population import api_session
    from bench.servers import relay_server

    entry: dict = {"name": "relay", "kind": "relay"}
    print("[relay] starting", flush=True)
    with relay_server(work_root / "relay") as target:
        entry["info"] = target.info
        lag = LoopLag()
        lag.start()
        rooms = list(range(len(plan.groups)))
        fleet, setup = await connect_fleet(target, plan, None, rooms, concurrency=args.connect_concurrency, lag=lag)
        entry["setup"] = setup
        print(f"[relay] {setup['connected']}/{setup['clients']} open, {setup['server_kib_per_client']} KiB/tab", flush=True)
        try:
            phases = []
            async with api_session(target.url, limit=POST_CONCURRENCY) as session:
                sender = Sender(fleet, session, seed=args.seed)
                for rate in args.rate_list:
                    phases.append(await _phase(fleet, sender, f"{rate:g}/s", rate, args.seconds))
                await sender.drain(60)
                await wait_quiet(fleet, quiet=2.0, timeout=60)
                finalize(fleet, phases)
            entry["phases"] = phases
        finally:
            await close_fleet(fleet)
            await lag.stop()
    return entry


def _code_version() -> dict:
    """The commit measured, and whether the app's files differed from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "app_files_modified": git("status", "--porcelain", "--", "chat_app", "rxconfig.py", "alembic").splitlines(),
    }


def _log_errors(log_path: Path | None) -> dict:
    if not log_path or not log_path.exists():
        return {}
    lines = log_path.read_text(errors="replace").splitlines()
    errors = [line for line in lines if "Traceback" in line or " ERROR " in line or "Error:" in line]
    return {"count": len(errors), "examples": errors[:5]}


async def run_all(args, results: dict, work_root: Path, stamp: str) -> None:
    from bench.population import build_plan
    from bench.servers import parse_configs

    plan = build_plan(args.clients, args.seed)
    results["population"] = {
        "tabs": len(plan.tabs), "users": plan.n_users, "conversations": len(plan.groups),
        "users_with_two_tabs": len(plan.tabs) - plan.n_users,
        "users_in_two_conversations": sum(1 for groups in plan.user_groups if len(groups) > 1),
        "mean_deliveries_per_message": round(plan.mean_fanout, 2),
    }
    print(f"population: {results['population']}", flush=True)
    for name in parse_configs(args.config):
        entry = await measure_reflex(name, args, plan, work_root, stamp)
        results["targets"].append(entry)
        for messages in args.history_list:
            from bench.history import measure_history_memory

            entry.setdefault("with_history", []).append(
                await measure_history_memory(name, args, plan, work_root, messages=messages)
            )
    if not args.no_relay:
        results["targets"].append(await measure_relay(args, plan, work_root))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    from bench import report
    from bench.servers import parse_configs

    parse_configs(args.config)  # fail fast on a bad name
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict = {
        "started": stamp,
        "args": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        },
        "targets": [],
    }
    try:
        import reflex

        results["machine"]["reflex"] = reflex.constants.Reflex.VERSION
    except Exception:
        pass
    results["code"] = _code_version()
    work_root = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    json_path = args.results_dir / f"{stamp}.json"
    try:
        asyncio.run(run_all(args, results, work_root, stamp))
        if not args.no_db:
            from bench.dbbench import run_db_bench

            print(f"[db] history ({args.history_rows:,} vs 10,000 messages) and commit timings", flush=True)
            results["db"] = run_db_bench(work_root / "db", big=args.history_rows)
    except KeyboardInterrupt:
        results["interrupted"] = True
        print("interrupted: writing what was measured", file=sys.stderr)
    finally:
        results["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        report.write_json(results, json_path)
        shutil.rmtree(work_root, ignore_errors=True)
    png_path = json_path.with_suffix(".png")
    report.plot(results, png_path)
    print()
    print(report.table(results))
    print(f"\nwrote {json_path} and {png_path}")
    return 1 if results.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
