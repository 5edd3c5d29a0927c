"""Does the bench client open a conversation exactly as a real tab does? Field by field.

    python -m bench.compare_frames

Starts the app (SQLite, one worker) on a free port, signs up Alice and Bob
through the API, starts a conversation with two messages, then opens
/messages/{id} as Alice twice, one after the other, and each time has Bob send
one more message through the API once the page is open (the push path):

1. in headless Chromium (Debian's /usr/bin/chromium driven by Playwright),
   recording the websocket's handshake and frames through the DevTools protocol;
2. with the benchmark's `BenchSocket` (bench/client.py), recording its
   handshake (aiohttp trace) and the engine.io packets it sends and receives.

Then prints both side by side: the upgrade request (path, query, headers),
every frame sent (flattened JSON, field by field) and every event frame
received (which state vars each delta carries, and their values).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import httpx

from bench.client import EVENT_PREFIX, BenchSocket, Tracker, page_constants, thread_state_key
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.server import AppServer, migrate

COOKIE = "chat_app.session_token"
RANDOM_HEADERS = {"sec-websocket-key"}  # differs on every connection by design
WIDTH = 58
PUSHED = "a message pushed while the page is open"


def _sign_up(url: str, name: str) -> dict:
    response = httpx.post(
        f"{url}/api/auth/sign-up/email",
        json={"name": name, "email": f"{name.lower()}@example.com", "password": "password123"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def _send(url: str, token: str, conversation_id: int, text: str, client_id: str) -> None:
    httpx.post(
        f"{url}/api/conversations/{conversation_id}/messages",
        json={"content": text, "client_message_id": client_id},
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    ).raise_for_status()


def _setup(url: str) -> tuple[dict, dict, int]:
    """The same people, conversation and messages on each side's fresh server."""
    alice, bob = _sign_up(url, "Alice"), _sign_up(url, "Bob")
    auth = {"Authorization": f"Bearer {alice['token']}"}
    conversation_id = httpx.post(
        f"{url}/api/conversations", json={"emails": [bob["user"]["email"]]}, headers=auth, timeout=30
    ).json()["id"]
    for number, text in enumerate(("hello from the API", "a second message"), start=1):
        _send(url, alice["token"], conversation_id, text, f"m{number}")
    return alice, bob, conversation_id


def record_chromium(url: str, token: str, conversation_id: int, push) -> dict:
    """Open the page in Chromium, have `push(text)` send Bob's message; return the /_event
    handshake and frames."""
    from playwright.sync_api import sync_playwright

    log: list[tuple[str, dict]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            for event in (
                "Network.webSocketCreated", "Network.webSocketWillSendHandshakeRequest",
                "Network.webSocketFrameSent", "Network.webSocketFrameReceived",
            ):
                cdp.on(event, lambda params, event=event: log.append((event, params)))
            page.goto(f"{url}/messages/{conversation_id}")
            page.get_by_text("a second message").first.wait_for(timeout=20_000)
            time.sleep(1.5)
            push()
            page.get_by_text(PUSHED).first.wait_for(timeout=20_000)
            time.sleep(1.5)
            context.close()
        finally:
            browser.close()
    sockets = {p["requestId"]: p["url"] for e, p in log if e == "Network.webSocketCreated" and "/_event" in p["url"]}
    request_id = next(iter(sockets))
    handshake = next(p["request"] for e, p in log if e == "Network.webSocketWillSendHandshakeRequest" and p["requestId"] == request_id)
    sent = [p["response"]["payloadData"] for e, p in log if e == "Network.webSocketFrameSent" and p["requestId"] == request_id]
    received = [p["response"]["payloadData"] for e, p in log if e == "Network.webSocketFrameReceived" and p["requestId"] == request_id]
    return {"url": sockets[request_id], "headers": handshake["headers"], "sent": sent, "received": received}


async def record_bench_socket(url: str, token: str, conversation_id: int, web_dir: Path, push) -> dict:
    """Open the same page with the benchmark's socket; return the same record."""
    handshakes: list[dict] = []

    async def on_headers_sent(_session, _context, params) -> None:
        handshakes.append({"url": str(params.url), "headers": dict(params.headers)})

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers_sent)
    tracker = Tracker(thread_state_key())
    socket = BenchSocket(
        url, index=0, tracker=tracker, cookie=f"{COOKIE}={token}",
        conversation_id=conversation_id, page=page_constants(web_dir), trace_configs=[trace],
    )
    sent: list[str] = []
    received: list[str] = []
    eio = socket._client.eio
    original_send, original_receive = eio._send_packet, eio._receive_packet

    async def send_packet(packet):
        sent.append(packet.encode())
        await original_send(packet)

    async def receive_packet(packet):
        received.append(packet.encode())
        await original_receive(packet)

    eio._send_packet, eio._receive_packet = send_packet, receive_packet
    await socket.connect()
    await asyncio.wait_for(socket.ready.wait(), 20)
    await socket.settle(quiet=1.5)
    await asyncio.to_thread(push)
    for _ in range(100):
        if PUSHED in "".join(received):
            break
        await asyncio.sleep(0.1)
    await socket.settle(quiet=1.5)
    sent_before_close = list(sent)  # closing sends a namespace DISCONNECT and an engine.io CLOSE
    await socket.close()
    sent[:] = sent_before_close
    return {"url": handshakes[0]["url"], "headers": handshakes[0]["headers"], "sent": sent, "received": received}


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: value}


def _packet(frame: str) -> tuple[str, object]:
    """An engine.io text frame -> (kind, JSON payload); an EVENT's ["name", data] -> ("42/ns, name", data)."""
    match = re.match(r"^(\d+)(/[^,\[{]*,)?(.*)$", frame, re.S)
    kind = match.group(1) + (match.group(2) or "")
    body = match.group(3)
    try:
        data = json.loads(body) if body else None
    except json.JSONDecodeError:
        return kind, body
    if isinstance(data, list) and data and isinstance(data[0], str):
        return f"{kind} {data[0]}", data[1] if len(data) > 1 else None
    return kind, data


def _short(value: object, width: int = WIDTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(name: str, left: object, right: object, *, same: bool | None = None) -> str:
    if same is None:
        same = left == right
    mark = "same" if same else "DIFF"
    return f"  {name[:44]:<44} {_short(left):<{WIDTH}} {_short(right):<{WIDTH}} {mark}"


def compare(browser: dict, bench: dict) -> list[str]:
    lines = [f"  {'field':<44} {'Chromium tab':<{WIDTH}} {'bench client (BenchSocket)':<{WIDTH}}"]
    lines.append("== handshake (websocket upgrade request)")
    b_url, c_url = urlsplit(browser["url"]), urlsplit(bench["url"])
    lines.append(_row("path", b_url.path, c_url.path))
    b_query, c_query = dict(parse_qsl(b_url.query)), dict(parse_qsl(c_url.query))
    for key in sorted(set(b_query) | set(c_query)):
        left, right = b_query.get(key, "(absent)"), c_query.get(key, "(absent)")
        if key == "token":  # a fresh UUID per tab, by design
            uuid_re = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
            lines.append(_row("query token (a per-tab UUID)", left, right,
                              same=bool(re.match(uuid_re, left) and re.match(uuid_re, right))))
        elif key == "t":
            lines.append(_row("query t (cache-buster timestamp)", left, right, same=True))
        else:
            lines.append(_row(f"query {key}", left, right))
    b_headers = {k.lower(): v for k, v in browser["headers"].items()}
    c_headers = {k.lower(): v for k, v in bench["headers"].items()}
    for key in sorted(set(b_headers) | set(c_headers)):
        left, right = b_headers.get(key, "(absent)"), c_headers.get(key, "(absent)")
        if key in RANDOM_HEADERS:
            lines.append(_row(f"header {key} (random)", left, right, same=left != "(absent)" and right != "(absent)"))
        else:
            lines.append(_row(f"header {key}", left, right))

    lines.append("== frames sent (engine.io packets; pings/pongs left out)")
    b_sent = [f for f in browser["sent"] if f not in ("2", "3")]
    c_sent = [f for f in bench["sent"] if f not in ("2", "3")]
    lines.append(_row("number of frames", len(b_sent), len(c_sent)))
    for index in range(max(len(b_sent), len(c_sent))):
        b_kind, b_body = _packet(b_sent[index]) if index < len(b_sent) else ("(none)", None)
        c_kind, c_body = _packet(c_sent[index]) if index < len(c_sent) else ("(none)", None)
        lines.append(_row(f"sent #{index + 1} packet type/namespace", b_kind, c_kind))
        b_flat, c_flat = _flatten(b_body or {}), _flatten(c_body or {})
        for key in sorted(set(b_flat) | set(c_flat), key=lambda k: (k.count("."), k)):
            lines.append(_row(f"  {key}", b_flat.get(key, "(absent)"), c_flat.get(key, "(absent)")))

    lines.append("== event frames received (each delta: state -> vars)")
    b_raw = [f for f in browser["received"] if f.startswith("4" + EVENT_PREFIX)]
    c_raw = [f for f in bench["received"] if f.startswith("4" + EVENT_PREFIX)]
    b_events = [_packet(f)[1] for f in b_raw]
    c_events = [_packet(f)[1] for f in c_raw]
    lines.append(_row("number of event frames", len(b_events), len(c_events)))
    connection_specific = ("rx_router_headers", "rx_router_session")
    for index in range(max(len(b_events), len(c_events))):
        b_frame = b_events[index] if index < len(b_events) else {}
        c_frame = c_events[index] if index < len(c_events) else {}
        b_delta, c_delta = b_frame.get("delta", {}), c_frame.get("delta", {})
        b_size = len(b_raw[index]) if index < len(b_raw) else 0
        c_size = len(c_raw[index]) if index < len(c_raw) else 0
        lines.append(_row(f"-- frame {index + 1}: characters (within 2 %)", b_size, c_size,
                          same=abs(b_size - c_size) <= 0.02 * max(b_size, c_size, 1)))
        for state in sorted(set(b_delta) | set(c_delta)):
            short_state = state.rsplit(".", 1)[-1]
            b_vars, c_vars = b_delta.get(state, {}), c_delta.get(state, {})
            for var in sorted(set(b_vars) | set(c_vars)):
                name = f"{short_state.split('____')[-1]}.{var.split('_rx_state_')[0]}"
                left, right = b_vars.get(var, "(absent)"), c_vars.get(var, "(absent)")
                if var.startswith(connection_specific) and left != "(absent)" and right != "(absent)":
                    # The socket's own headers/sid echoed back: compare their field names.
                    keys_l, keys_r = sorted(_flatten(left)), sorted(_flatten(right))
                    lines.append(_row(f"{name} (field names)", ",".join(keys_l), ",".join(keys_r)))
                    continue
                if isinstance(left, list) and isinstance(right, list) and left and isinstance(left[0], dict):
                    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("created_at", "last_activity_at")} for r in rows]  # noqa: E731
                    lines.append(_row(name, left, right, same=strip(left) == strip(right)))
                    continue
                lines.append(_row(name, left, right))
        for key in ("events", "final"):
            if key in b_frame or key in c_frame:
                lines.append(_row(f"({key})", b_frame.get(key, "(absent)"), c_frame.get(key, "(absent)")))
    return lines


def _on_fresh_server(record):
    """Run `record(url, alice, conversation_id, push, web_dir)` against a fresh app and database."""
    work = Path(tempfile.mkdtemp(prefix="chat-compare-"))
    database_url = f"sqlite:///{work / 'chat_app.db'}"
    migrate(database_url)
    server = AppServer(database_url=database_url, work_dir=work)
    print(f"starting the app ({work}) …", flush=True)
    server.start()
    try:
        alice, bob, conversation_id = _setup(server.url)

        def push() -> None:
            _send(server.url, bob["token"], conversation_id, PUSHED, "m3")

        result = record(server.url, alice, conversation_id, push, work / "web")
        result["netloc"] = urlsplit(server.url).netloc
        return result
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    # Each side gets its own fresh server and identical data, so the frames can match byte for byte
    # but for tokens, ids of sockets and times.
    tokens = {}

    def chromium(url, alice, conversation_id, push, _web_dir):
        tokens["chromium"] = alice["token"]
        return record_chromium(url, alice["token"], conversation_id, push)

    def bench(url, alice, conversation_id, push, web_dir):
        tokens["bench"] = alice["token"]
        # After Playwright's sync API has closed, this thread may run its own event loop.
        return asyncio.run(record_bench_socket(url, alice["token"], conversation_id, web_dir, push))

    browser_record = _on_fresh_server(chromium)
    bench_record = _on_fresh_server(bench)
    for record, side in ((browser_record, "chromium"), (bench_record, "bench")):
        # The two servers differ only in their port; the session tokens are secrets.
        def same(text: str, record=record, side=side) -> str:
            return text.replace(tokens[side], "<alice's token>").replace(record["netloc"], "localhost:<port>")

        record["url"] = same(record["url"])
        record["headers"] = {k: same(v) for k, v in record["headers"].items()}
        for key in ("sent", "received"):
            record[key] = [same(frame) for frame in record[key]]
    lines = compare(browser_record, bench_record)
    print("\n".join(lines))
    diffs = [line for line in lines if line.endswith("DIFF")]
    print(f"\n{len(diffs)} field(s) differ" + (":" if diffs else ""))
    for line in diffs:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
