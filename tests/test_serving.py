"""How the back end is served: the event websocket straight to Reflex's socket app, one malloc arena, event ids drawn in process."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import reflex_base.event.context as event_context
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

import chat_app.chat_app
from chat_app.serving import (
    SOCKET_HEADERS,
    draw_event_ids_in_process,
    limit_malloc_arenas,
    route_sockets_straight,
)
from tests.support.server import PROJECT_ROOT

BROWSER_SOCKET_HEADERS = [
    (b"host", b"localhost:3000"),
    (b"connection", b"Upgrade"),
    (b"pragma", b"no-cache"),
    (b"cache-control", b"no-cache"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0"),
    (b"upgrade", b"websocket"),
    (b"origin", b"http://localhost:3000"),
    (b"sec-websocket-version", b"13"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-US,en;q=0.9"),
    (b"cookie", b"chat_app.session_token=abc.def"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
    (b"sec-websocket-protocol", b"0.10.1"),
    # added by a reverse proxy in front of the app
    (b"x-forwarded-for", b"203.0.113.7"),
    (b"x-real-ip", b"203.0.113.7"),
]


@dataclass
class Recorder:
    """An ASGI app that notes the scopes it was called with."""

    scopes: list[Scope] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)


@dataclass
class BuiltApp:
    """What `route_sockets_straight` uses of a built Reflex app: its API with the socket mount."""

    socket_app: Recorder
    contexts_set: int = 0

    def __post_init__(self) -> None:
        self._api = Starlette(routes=[Mount("/_event", app=self.socket_app)])

    def _set_contexts_internal(self) -> dict:
        self.contexts_set += 1
        return {}


def call(app, scope: Scope) -> None:
    async def receive() -> dict:
        return {"type": "websocket.disconnect"}

    async def send(_message: dict) -> None:
        return None

    # In a thread of its own: browser tests earlier in the run leave an event loop running here.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, app(scope, receive, send)).result()


def test_the_socket_skips_the_http_stack_and_keeps_only_the_headers_it_reads() -> None:
    socket_app, everything_else = Recorder(), Recorder()
    built = BuiltApp(socket_app)
    route = route_sockets_straight(built, everything_else)
    call(route, {"type": "websocket", "path": "/_event/", "headers": list(BROWSER_SOCKET_HEADERS)})
    assert everything_else.scopes == []
    [scope] = socket_app.scopes
    assert built.contexts_set == 1
    kept = dict(scope["headers"])
    assert kept == {name: value for name, value in BROWSER_SOCKET_HEADERS if name in SOCKET_HEADERS}
    assert kept[b"cookie"] == b"chat_app.session_token=abc.def"
    assert {b"host", b"origin", b"upgrade", b"connection", b"sec-websocket-protocol"} <= set(kept)
    assert not {b"accept-language", b"sec-websocket-key", b"pragma", b"user-agent"} & set(kept)
    assert kept[b"x-forwarded-for"] == b"203.0.113.7"  # Reflex's client IP behind a proxy
    assert b"x-real-ip" not in kept


def test_http_and_other_websockets_take_the_usual_way_untouched() -> None:
    socket_app, everything_else = Recorder(), Recorder()
    route = route_sockets_straight(BuiltApp(socket_app), everything_else)
    for scope in (
        {"type": "http", "path": "/_event/", "headers": list(BROWSER_SOCKET_HEADERS)},
        {"type": "websocket", "path": "/_events", "headers": list(BROWSER_SOCKET_HEADERS)},
        {"type": "http", "path": "/api/conversations", "headers": list(BROWSER_SOCKET_HEADERS)},
    ):
        call(route, scope)
    assert socket_app.scopes == []
    assert [scope["path"] for scope in everything_else.scopes] == [
        "/_event/",
        "/_events",
        "/api/conversations",
    ]
    assert all(scope["headers"] == BROWSER_SOCKET_HEADERS for scope in everything_else.scopes)


def test_the_real_app_has_the_socket_mount_it_routes_to() -> None:
    # Reflex 0.10.1 offers no public handle on its socket app; this fails if the mount moves.
    route = route_sockets_straight(chat_app.chat_app.app, Recorder())
    assert callable(route)


ARENA_PROBE = """
import ctypes, sys, threading
from chat_app.serving import limit_malloc_arenas

if sys.argv[1] == "limited":
    assert limit_malloc_arenas(1)
elif sys.argv[1] == "rxconfig":
    import rxconfig  # what `reflex run` loads before Granian forks the workers
kept = []
together = threading.Barrier(4)

def allocate():
    together.wait()  # alive at once: an exiting thread's arena would be handed on
    for _ in range(200):
        kept.append(bytes(4096))  # past pymalloc's 512-byte limit: straight from malloc
    together.wait()

threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()
"""


def _malloc_arenas_after_four_threads(mode: str) -> int:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, mode],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sum(1 for line in result.stderr.splitlines() if line.startswith("Arena "))


def test_one_malloc_arena_serves_every_thread():
    # Without the limit, glibc gives each new thread an arena of its own.
    assert _malloc_arenas_after_four_threads("unlimited") >= 4
    assert _malloc_arenas_after_four_threads("limited") == 1


def test_the_app_config_sets_the_arena_limit():
    assert _malloc_arenas_after_four_threads("rxconfig") == 1


def test_an_arena_limit_set_in_the_environment_is_left_to_glibc(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(1) is False


def _event_context() -> event_context.EventContext:
    return event_context.EventContext(token="tab", state_manager=None, enqueue_impl=None)  # type: ignore[arg-type]


def test_event_ids_are_drawn_without_the_system_call(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(os, "urandom", lambda size: calls.append(size) or bytes(size))
    monkeypatch.setattr(event_context, "os", os)  # Reflex as shipped; restored after the test
    _event_context()
    assert calls == [6]  # as shipped, every event context costs a getrandom call

    draw_event_ids_in_process()
    ids = {_event_context().txid for _ in range(1000)}
    assert calls == [6]
    assert len(ids) == 1000
    assert all(re.fullmatch("[0-9a-f]{12}", txid) for txid in ids)


def test_forked_workers_draw_event_ids_of_their_own():
    draw_event_ids_in_process()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the worker: report its next id and leave at once
        os.write(writer, _event_context().txid.encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    childs_id = os.read(reader, 64).decode()
    os.close(reader)
    assert len(childs_id) == 12
    assert childs_id != _event_context().txid


def test_the_app_draws_event_ids_in_process():
    # The app module, which every worker imports, sets it up.
    check = (
        "import os; import chat_app.chat_app; import reflex_base.event.context as event_context; "
        "print(event_context.os is not os)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "True"
