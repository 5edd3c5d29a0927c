"""What a pushed message costs the browser: main-thread time in Chromium per message.

    python -m bench.browser_cost [--listed 200] [--messages 40]

Starts the app (SQLite, one worker) on a free port, and for a person listing
one conversation and then one listing `--listed`, opens their newest
conversation in headless Chromium, sends `--messages` messages into it through
the HTTP API from the other member (each waited for on the page) and reads
Chromium's own counters (the DevTools protocol's `Performance.getMetrics`)
before and after. Prints, per message: the main thread's busy time (tasks),
and within it script, style and layout. Each message is waited for outside the
page (the frame carrying it, then 50 ms to draw it), so the figures are the
page's own work; that every message was drawn is checked after.

Figures move with the machine; compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.chat import SESSION_COOKIE, send_as, start_conversation
from tests.conftest import create_account
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.server import AppServer, migrate

# After the frame carrying a message arrives: time for the page to apply and draw it.
SETTLE_MS = 50
METRICS = (
    ("TaskDuration", "tasks"),
    ("ScriptDuration", "script"),
    ("RecalcStyleDuration", "style"),
    ("LayoutDuration", "layout"),
)


def _cost_per_message(browser, base_url: str, *, listed: int, messages: int) -> dict[str, float]:
    me = create_account(base_url, "Browser Cost")
    friends = [create_account(base_url, f"Friend {number:03d}") for number in range(listed)]
    conversation_ids = [start_conversation(base_url, me, friend) for friend in friends]
    talker, open_id = friends[-1], conversation_ids[-1]  # started last: listed first
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    try:
        context.add_cookies([{"name": SESSION_COOKIE, "value": me.token, "url": base_url}])
        page = context.new_page()
        frames: list[str] = []
        page.on(
            "websocket",
            lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))),
        )
        page.goto(f"/messages/{open_id}")
        expect(page.locator("#conversation-list .conversation-row")).to_have_count(
            listed, timeout=60_000
        )
        expect(page.locator("#composer")).to_be_visible()
        devtools = context.new_cdp_session(page)
        devtools.send("Performance.enable")
        time.sleep(1)  # let the page's own start-up work finish

        def read() -> dict[str, float]:
            metrics = devtools.send("Performance.getMetrics")["metrics"]
            return {metric["name"]: metric["value"] for metric in metrics}

        before = read()
        for number in range(messages):
            text = f"browser cost {number} {uuid.uuid4().hex[:8]}"
            received_before = len(frames)
            send_as(base_url, talker.token, open_id, text)
            # Waited for here, not in the page: the frame, then time to draw it.
            deadline = time.monotonic() + 10
            while not any(text in frame for frame in frames[received_before:]):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no frame carried {text!r} within 10 s")
                page.wait_for_timeout(5)
            page.wait_for_timeout(SETTLE_MS)
        after = read()
        shown = page.locator("#message-list .message-body", has_text="browser cost")
        expect(shown).to_have_count(messages)  # every message was drawn
        return {label: (after[name] - before[name]) / messages * 1000 for name, label in METRICS}
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    """Print the main thread's time per pushed message, for a short and a long list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listed", type=int, default=200, help="conversations in the long list")
    parser.add_argument("--messages", type=int, default=40, help="messages pushed per case")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'browser_cost.db'}"
        migrate(database_url)
        server = AppServer(database_url=database_url, work_dir=Path(folder))
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS
                )
                try:
                    print(f"Chromium main thread per pushed message ({args.messages} messages):")
                    print("  listed   " + "  ".join(f"{label:>9}" for _, label in METRICS))
                    for listed in (1, args.listed):
                        cost = _cost_per_message(
                            browser, server.url, listed=listed, messages=args.messages
                        )
                        print(
                            f"  {listed:>6}   "
                            + "  ".join(f"{cost[label]:6.1f} ms" for _, label in METRICS)
                        )
                finally:
                    browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
