"""Summarise a `py-spy record --format raw` file (collapsed stacks): where the samples went.

    python -m bench.pyspy_summary bench/results/<stamp>-<config>-<rate>.pyspy.txt [--top 25]
                                  [--thread MainThread] [--through BaseEventLoop._run_once]

`--thread` keeps only the samples of threads whose name contains it (the file
must come from `BENCH_PYSPY_ARGS=--threads`, which also makes the summary list
the share of each thread): MainThread is the event loop, asyncio_N the database
threads, and a thread with no Python name Granian's own (native) one. `--through`
keeps only the stacks with a frame of that function, which needs no thread names:
`BaseEventLoop._run_once` is the event loop.

Prints, per process, the share of samples whose stack contains each function
(inclusive) and whose innermost frame is each function (self), plus a few
buckets that matter for this app (state (de)serialisation, database, socket
emit, JSON, password hashing, idle).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"^(select|poll|wait|_wait_for_tstate_lock|acquire) \(")
BUCKETS = {
    "database (SQLAlchemy / sqlite3 / psycopg)": re.compile(r"sqlalchemy|sqlite3|psycopg"),
    "Reflex state get/set/lock (state manager)": re.compile(r"reflex/istate/manager|modify_state|get_state \(reflex"),
    "Reflex delta computation (get_delta/dict/serialize)": re.compile(r"get_delta|_resolve_delta|_get_resolved_delta|serialize"),
    "socket emit (python-socketio/engineio)": re.compile(r"socketio/|engineio/"),
    "JSON encode/decode": re.compile(r"json/|json_dumps"),
    "pickle (state to/from Redis)": re.compile(r"pickle|dill"),
    "redis client": re.compile(r"redis/"),
    "password hashing (argon2)": re.compile(r"argon2|passlib"),
    "chat_app code": re.compile(r"chat_app/"),
}


def frames_of(stack: str) -> list[str]:
    return [frame for frame in stack.split(";") if frame]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument("--through", help="only stacks with a frame of this function")
    args = parser.parse_args()
    per_process: dict[str, list[tuple[list[str], int]]] = {}
    per_thread: dict[str, Counter[str]] = {}
    for line in args.path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = frames_of(stack)
        processes = [frame for frame in frames if frame.startswith("process ")]
        process = processes[-1] if processes else "all"
        threads = [frame for frame in frames if frame.startswith("thread ")]
        if args.thread and not any(args.thread in thread for thread in threads):
            continue
        # "func (file.py:123)" -> "func (file.py)": lines of one function count together
        frames = [
            re.sub(r":\d+\)$", ")", frame)
            for frame in frames
            if not frame.startswith(("process ", "thread "))
        ]
        if args.through and not any(frame.startswith(f"{args.through} (") for frame in frames):
            continue
        per_process.setdefault(process, []).append((frames, int(count)))
        # "thread (12856): asyncio_0" -> "asyncio_0"; a thread without a Python name is native (Granian's)
        thread = re.sub(r"^thread \(\d+\):? ?", "", threads[-1]) if threads else ""
        per_thread.setdefault(process, Counter())[thread or "(unnamed)"] += int(count)
    for process, stacks in sorted(per_process.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        total = sum(count for _, count in stacks)
        print(f"\n== {process[:110]}: {total} samples")
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        buckets: Counter[str] = Counter()
        for frames, count in stacks:
            for frame in set(frames):
                inclusive[frame] += count
            if frames:
                own[frames[-1]] += count
            joined = ";".join(frames)
            for name, pattern in BUCKETS.items():
                if pattern.search(joined):
                    buckets[name] += count
        idle = sum(count for frames, count in stacks if frames and IDLE.search(frames[-1]))
        print(f"  idle (innermost frame is a select or a wait): {100 * idle / max(1, total):.1f}%")
        if len(per_thread[process]) > 1:  # recorded with --threads
            print("  threads (samples while not idle, as py-spy sees it):")
            for thread, count in per_thread[process].most_common():
                print(f"    {100 * count / total:5.1f}%  {thread}")
        print("  buckets (a sample can be in several):")
        for name, count in buckets.most_common():
            print(f"    {100 * count / total:5.1f}%  {name}")
        print("  inclusive:")
        for frame, count in inclusive.most_common(args.top):
            print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
        print("  chat_app functions (inclusive):")
        app = Counter({frame: count for frame, count in inclusive.items() if "chat_app/" in frame})
        for frame, count in app.most_common(args.top):
            print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
        print("  self:")
        for frame, count in own.most_common(args.top):
            print(f"    {100 * count / total:5.1f}%  {frame[:150]}")


if __name__ == "__main__":
    main()
