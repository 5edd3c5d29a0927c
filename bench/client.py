"""The load generator's socket: a ReflexSocket that opens a page as Chromium does, and measures.

A real tab (see `bench/compare_frames.py`) sends exactly one frame to open
/messages/{id}: the socket.io CONNECT packet of namespace `/_event`, whose auth
carries `State.hydrate_and_load` (with the compiled initial-state hashes, the
page's router data) and the compiled state schema; the server then runs the
page's on_load chain by itself. Later, whenever a frame carries events for the
page to run, the page sends each state event straight back (name, payload and
the page's router data). `BenchSocket` does the same, with the same websocket
subprotocol (Reflex's version) and browser-like headers, and handles every
received frame without keeping it:

- the first frame that contains a message's unique token is that message's
  delivery to this tab. A tab that has the message's conversation open must
  show every message (its thread list carries them all). A member's tab that
  shows another conversation only sees the message in its conversation list,
  whose row previews the newest message alone: there a frame carrying a newer
  message of that conversation (a higher id, from each send's response) delivers
  the older ones too ("superseded");
- each frame carrying ThreadState's thread (any of the parts it travels in) is parsed to find duplicates (the
  same message twice in the list) and stale frames (a list lacking a message
  an earlier frame on this tab had, inside the window it still covers).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from reflex.constants import Reflex
from reflex.state import State

from tests.support.reflex_client import NAMESPACE, ReflexSocket, handler_name

# The headers Chromium sends with the upgrade besides the websocket ones
# (recorded by bench/compare_frames.py). Reflex stores them in the tab's state and
# sends them back in router deltas, so they size the frames too.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/156.0.0.0 Safari/537.36"
    ),
    "Accept-Language": "en-US,en;q=0.9",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "Accept-Encoding": "gzip, deflate, br, zstd",
}

EVENT_PREFIX = f"2{NAMESPACE},"  # a socket.io EVENT packet (engine.io has taken its "4")
TOKEN_RE = re.compile(r"bm(\d+)x")


def _state_modules():
    """ThreadState's and InboxState's modules (the app's state tree must be importable)."""
    import chat_app.chat_app  # noqa: F401  (builds the state tree, as the server does)
    from chat_app.states import inbox, thread

    return thread, inbox


_THREAD, _INBOX = _state_modules()
# The delta keys of the lists ThreadState's thread travels in, oldest part first.
THREAD_KEYS = tuple(f"{part}_rx_state_" for part in _THREAD.PARTS)
THREAD_PARTS = tuple(f'"{key}"' for key in THREAD_KEYS)
# A tab shows at most THREAD_WINDOW_MAX messages; past that it drops its oldest ones,
# down to THREAD_WINDOW_KEEP.
THREAD_WINDOW_MAX, THREAD_WINDOW_KEEP = _THREAD.WINDOW_MAX, _THREAD.WINDOW_KEEP
# The delta keys of the tiers InboxState's conversation list travels in, first rows first.
INBOX_KEYS = tuple(f"{tier}_rx_state_" for tier in _INBOX.TIERS)
INBOX_TIERS = tuple(f'"{key}"' for key in INBOX_KEYS)


def page_constants(web_dir: Path) -> tuple[list[str], str]:
    """The initial-state hashes and state schema compiled into this server's front end."""
    text = (web_dir / "utils" / "context.jsx").read_text()
    hashes = json.loads(re.search(r"initialStateHashes = (\[.*?\])", text).group(1))
    schema = json.loads(re.search(r"stateSchema = (\".*?\")", text).group(1))
    return hashes, schema


def thread_state_key() -> str:
    """The delta key of ThreadState (the app's state tree must be importable)."""
    import chat_app.chat_app  # noqa: F401  (builds the state tree, as the server does)
    from chat_app.states.thread import ThreadState

    return ThreadState.get_full_name()


def inbox_state_key() -> str:
    """The delta key of InboxState (the conversation list)."""
    import chat_app.chat_app  # noqa: F401
    from chat_app.states.inbox import InboxState

    return InboxState.get_full_name()


class _Client(socketio.AsyncClient):
    """Hands `42/_event,` frames to the owner as raw text, before any decoding."""

    def __init__(self, owner: BenchSocket, **kwargs: Any):
        super().__init__(**kwargs)
        self._owner = owner

    async def _handle_eio_message(self, data):
        if isinstance(data, str) and data.startswith(EVENT_PREFIX):
            self._owner.on_frame(data, time.monotonic())
            return
        await super()._handle_eio_message(data)


class Tracker:
    """Every message sent in the run and who received it when; shared by all sockets of a target."""

    def __init__(self, thread_key: str | None, inbox_key: str | None = None):
        self.thread_key = thread_key
        self.inbox_key = inbox_key
        self.messages: dict[int, dict] = {}  # seq -> {"t0", "conv", "expected", "recv": {client: t}}
        self.phase: str | None = None
        self.counters: dict[str, dict[str, int]] = {}
        self.unexpected: dict[str, int] = {}
        self.examples: dict[str, list] = {}
        self.frames = 0
        self.frame_bytes = 0

    def example(self, name: str, value: dict) -> None:
        if self.phase is None:
            return
        found = self.examples.setdefault(f"{self.phase}:{name}", [])
        if len(found) < 3:
            found.append(value)

    def count(self, name: str, n: int = 1) -> None:
        if self.phase is None:
            return
        bucket = self.counters.setdefault(self.phase, {})
        bucket[name] = bucket.get(name, 0) + n


class BenchSocket(ReflexSocket):
    """One simulated tab of one user, with one conversation open."""

    def __init__(
        self,
        base_url: str,
        *,
        index: int,
        tracker: Tracker,
        cookie: str | None = None,
        conversation_id: int = 0,
        group: int = -1,
        page: tuple[list[str], str] | None = None,
        trace_configs: list | None = None,
        previews_coalesce: bool = True,
    ):
        super().__init__(base_url, cookie=cookie)
        self.index = index
        self.group = group  # the plan's index of the open conversation
        self.previews_coalesce = previews_coalesce
        # group -> seqs (ascending) of messages expected here only as a list preview
        self.pending_previews: dict[int, list[int]] = {}
        # group -> (seq, time) of every message the list row showed here, in arrival order
        self.preview_frames: dict[int, list[tuple[int, float]]] = {}
        self.tracker = tracker
        self.conversation_id = conversation_id
        self.page = page
        self.seen: set[int] = set()
        self.ready = asyncio.Event()
        self.thread: list[tuple[int, str]] = []
        self._thread_parts: dict[str, list[dict]] = {}
        self._inbox_tiers: dict[str, list[dict]] = {}
        # The conversation list as last shown: conversation id -> (preview, unread count)
        self.rows: dict[int, tuple[str, int]] = {}
        self._thread_ids_ever: set[int] = set()
        self._duplicated: set[int] = set()
        self.disconnected = False
        self.measuring = False
        self._tasks: set[asyncio.Task] = set()
        self._client = _Client(
            self,
            reconnection=False,
            # Like Chromium: no Accept header, no cache-busting "t" in the query,
            # Reflex's version as the subprotocol, permessage-deflate offered.
            http_session=lambda: aiohttp.ClientSession(
                skip_auto_headers=("Accept",), trace_configs=trace_configs
            ),
            timestamp_requests=False,
            websocket_extra_options={"protocols": (Reflex.VERSION,), "compress": 15},
        )
        self._client.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    def router_data(self) -> dict:
        path = f"/messages/{self.conversation_id}"
        return {"pathname": path, "asPath": path, "query": {"conversation_id": str(self.conversation_id)}}

    def connect_auth(self) -> dict:
        """The CONNECT packet's auth, as the compiled front end builds it on first load."""
        hashes, schema = self.page
        return {
            "event": {
                "name": handler_name(State, "hydrate_and_load"),
                "payload": {"hashes": hashes},
                "router_data": self.router_data(),
            },
            "state_schema": schema,
        }

    def headers(self) -> dict[str, str]:
        origin = self.base_url
        headers = {"Origin": origin, **BROWSER_HEADERS}
        if self.cookie:
            headers["Cookie"] = self.cookie
        return headers

    async def connect(self, *, auth: dict | None = None, timeout: float = 30) -> None:  # type: ignore[override]
        """Open the socket; with a page, hydrate and open the conversation like a first page load."""
        await self._client.connect(
            f"{self.base_url}?token={self.token}",
            headers=self.headers(),
            auth=auth if auth is not None else (self.connect_auth() if self.page else None),
            transports=["websocket"],
            socketio_path="/_event",
            namespaces=[NAMESPACE],
            wait_timeout=timeout,
        )

    async def emit(self, event: str, data: Any) -> None:
        await self._client.emit(event, data, namespace=NAMESPACE)

    async def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected = True
        self.tracker.count("disconnects")

    def on_frame(self, raw: str, now: float) -> None:
        """Handle one received event frame (raw socket.io text)."""
        tracker = self.tracker
        tracker.frames += 1
        tracker.frame_bytes += len(raw)
        if not self.ready.is_set() and ('"is_hydrated_rx_state_":true' in raw or '"joined"' in raw):
            self.ready.set()  # the page's on_load chain ran (the relay: the rooms were joined)
        if "bm" in raw:
            seen = self.seen
            # In the app, a message of the open conversation counts once the thread list has it
            # (not when only the list preview beside it shows it).
            has_thread = not self.previews_coalesce or any(part in raw for part in THREAD_PARTS)
            for token in set(TOKEN_RE.findall(raw)):
                seq = int(token)
                if seq in seen:
                    continue
                message = tracker.messages.get(seq)
                if message is None:
                    seen.add(seq)
                    continue
                if self.index not in message["expected"]:
                    seen.add(seq)
                    tracker.unexpected[message["phase"]] = tracker.unexpected.get(message["phase"], 0) + 1
                elif message["conv"] == self.group or not self.previews_coalesce:
                    if has_thread:
                        seen.add(seq)
                        message["recv"].setdefault(self.index, now)
                else:
                    seen.add(seq)
                    self._preview_delivered(seq, message["conv"], now)
        frame = None
        key = tracker.thread_key
        if key and key in raw and any(part in raw for part in THREAD_PARTS):
            frame = json.loads(raw[len(EVENT_PREFIX):])
            thread = frame[1].get("delta", {}).get(key, {})
            sent = {key: thread[key] for key in THREAD_KEYS if key in thread}
            if sent:
                # The thread is sent in parts; a frame carries the ones that changed.
                self._thread_parts.update(sent)
                self._on_thread([row for key in THREAD_KEYS for row in self._thread_parts.get(key, [])])
        inbox_key = tracker.inbox_key
        if inbox_key and inbox_key in raw and any(tier in raw for tier in INBOX_TIERS):
            if frame is None:
                frame = json.loads(raw[len(EVENT_PREFIX):])
            inbox = frame[1].get("delta", {}).get(inbox_key, {})
            sent = {key: inbox[key] for key in INBOX_KEYS if key in inbox}
            if sent:
                # The list is sent in tiers; a frame carries the ones that changed.
                self._inbox_tiers.update(sent)
                self.rows = {
                    row["id"]: (row["preview"], row["unread"])
                    for key in INBOX_KEYS
                    for row in self._inbox_tiers.get(key, [])
                }
        if '"events":[{' in raw or '"events": [{' in raw:
            if frame is None:
                frame = json.loads(raw[len(EVENT_PREFIX):])
            self._run_server_events(frame[1].get("events") or [])

    def _run_server_events(self, events: list[dict]) -> None:
        """Send back the events the server asked this page to run, as the page's event queue does.

        Names starting with "_" (redirects, scripts, set_value, …) run in the browser
        itself; any other is a state event the page sends straight back over the socket
        (e.g. a redirect after the session ended).
        """
        for event in events:
            name = event.get("name") or ""
            if not name or name.startswith("_"):
                continue
            self.tracker.count("events_sent_back")
            task = asyncio.ensure_future(
                self.emit("event", {"name": name, "payload": event.get("payload") or {}, "router_data": self.router_data()})
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def expect_preview(self, seq: int, group: int) -> None:
        """A message of another conversation of this tab's user: expect it in the list preview."""
        self.pending_previews.setdefault(group, []).append(seq)

    def _preview_delivered(self, seq: int, group: int, now: float) -> None:
        """The list row of `group` showed message `seq` at `now`."""
        self.preview_frames.setdefault(group, []).append((seq, now))
        pending = self.pending_previews.get(group)
        if pending and seq in pending:
            pending.remove(seq)
            message = self.tracker.messages[seq]
            message["recv"].setdefault(self.index, now)
            message.setdefault("preview", set()).add(self.index)
        self.settle_previews(group)

    def settle_previews(self, group: int) -> None:
        """Count a pending preview as seen at the first frame whose row showed a newer message.

        Newer is by the server's id (from each send's response): the row shows the
        newest message by id, so one stored before it is never shown by itself.
        Called when a preview arrives and when a send's response tells its id;
        a frame whose message's id is not known yet holds back the decision.
        """
        pending = self.pending_previews.get(group)
        frames = self.preview_frames.get(group)
        if not pending or not frames:
            return
        messages = self.tracker.messages
        for seq in list(pending):
            message = messages[seq]
            if message.get("id") is None:
                continue
            for shown_seq, shown_at in frames:
                shown = messages[shown_seq]
                if shown.get("id") is None:
                    if shown.get("ok") is False:
                        continue  # its send failed: it cannot settle anything
                    break  # not known yet: decide later
                if shown["id"] > message["id"]:
                    pending.remove(seq)
                    message["recv"].setdefault(self.index, shown_at)
                    message.setdefault("preview", set()).add(self.index)
                    message.setdefault("superseded", set()).add(self.index)
                    break

    def _on_thread(self, rows: list[dict]) -> None:
        ids = [row["id"] for row in rows if row.get("id")]
        new = [(row["id"], row.get("body", "")) for row in rows if row.get("id")]
        if not self.measuring:
            self.thread = new
            self._thread_ids_ever.update(ids)
            return
        id_set = set(ids)
        if len(id_set) != len(ids):
            counts: dict[int, int] = {}
            for message_id in ids:
                counts[message_id] = counts.get(message_id, 0) + 1
            twice = {message_id for message_id, n in counts.items() if n > 1} - self._duplicated
            if twice:
                self._duplicated |= twice
                self.tracker.count("duplicates", len(twice))
                self.tracker.example("duplicates", {"client": self.index, "ids": sorted(twice)[:5]})
        missing = self._thread_ids_ever - id_set
        if missing:
            if len(id_set) >= THREAD_WINDOW_KEEP:  # it may have dropped its oldest rows
                floor = min(id_set)
                missing = {message_id for message_id in missing if message_id > floor}
            if missing:
                self.tracker.count("stale_frames")
                self.tracker.example("stale_frames", {
                    "client": self.index, "missing": sorted(missing)[:5], "frame_last_ids": ids[-5:],
                    "frame_len": len(ids), "newest_seen_before": max(self._thread_ids_ever),
                })
        self._thread_ids_ever |= id_set
        self.thread = new


async def bounded_gather(
    factories: list[Callable[[], Any]], *, concurrency: int, timeout: float
) -> list[Any]:
    """Run coroutine factories with at most `concurrency` at once; exceptions are returned."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(factory):
        async with semaphore:
            return await asyncio.wait_for(factory(), timeout)

    return await asyncio.gather(*(one(f) for f in factories), return_exceptions=True)
