"""How the back end is served: workers respawned, garbage collection tuned, the socket routed straight.

Reflex 0.10.1 starts Granian without `respawn_failed_workers`, so a worker that
exits unexpectedly (killed, out of memory, or Granian's own websocket-close
panic: emmett-framework/granian#799, #884) takes the whole server down with it.
Reflex offers no setting for it, so `rxconfig.py` turns it on here before
Reflex builds its Granian server; the other workers keep serving and the
failed one is started again.

A full garbage collection scans every tracked object: with 1,000 open tabs it
paused a worker's event loop for 50-140 ms every 10-20 s under load, the tail of
the delivery latency. `tune_garbage_collection` runs as each worker starts.

An open tab's websocket is served past the HTTP middleware (`ChatApp`), so it
does not hold that middleware's frames for its whole life.

glibc's malloc is limited to one arena (`limit_malloc_arenas`, called from
`rxconfig.py` before Granian forks its workers).

Reflex's per-event ids are drawn without a system call (`draw_event_ids_in_process`).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import random

import reflex as rx
from reflex.config import get_config
from reflex_base.constants import Endpoint
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send


def respawn_failed_workers() -> None:
    """Make every Granian server created in this process respawn failed workers."""
    try:
        from granian.server import Server
    except ImportError:  # another ASGI server is in use
        return
    original = Server.__init__
    if getattr(original, "respawns_failed_workers", False):
        return

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        kwargs.setdefault("respawn_failed_workers", True)
        original(self, *args, **kwargs)

    init.respawns_failed_workers = True
    Server.__init__ = init


# mallopt's parameter for the arena limit (glibc's malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int = 1) -> bool:
    """Serve every thread of this process, and of the workers forked from it, from `count` malloc arenas.

    glibc gives each new thread that allocates an arena of its own, up to eight
    per core, and memory freed in one arena is not reused for another's
    allocations. A worker's threads (the event loop, the database threads)
    each grow their own: with 1,000 open tabs that was 4-20 KiB more RSS per
    tab than with one arena (README, "Measured"). The price: SQLite works in
    the database threads without the GIL, so they and the event loop can wait
    for each other on the one arena; deliveries per second at saturation moved
    within the benchmark's noise. A MALLOC_ARENA_MAX set in the environment is
    left to glibc.

    Args:
        count: The arenas to allow.

    Returns:
        Whether the limit was set (False on a C library without `mallopt`, or
        when MALLOC_ARENA_MAX is set).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_ARENA_MAX, count) == 1


def draw_event_ids_in_process() -> None:
    """Draw Reflex's event-context ids from an in-process generator, not from `os.urandom`.

    Reflex 0.10.1 gives every event, and every `App.modify_state` (each push to
    each tab), a fresh id (`EventContext.txid`, a key of its own task
    bookkeeping that never leaves the server) from `os.urandom(6)`. CPython
    releases the GIL around that system call, so on a busy worker the event
    loop then waits to get it back from the database threads: 20 % of the
    loop's samples at 200 sends/s (README, "Measured"). The ids need to be
    distinct, not secret: a Mersenne Twister per process, seeded from the OS
    (again in each forked worker), gives the same 48 random bits holding the GIL.
    """
    import reflex_base.event.context as context

    if not isinstance(context.os, _OsWithInProcessUrandom):
        # Reflex's `_new_txid` reads `os.urandom` through its module's global `os`.
        context.os = _OsWithInProcessUrandom()


class _OsWithInProcessUrandom:
    """The `os` module as Reflex's event-context module sees it: `urandom` drawn in process."""

    def __init__(self) -> None:
        generator = random.Random()
        self.urandom = generator.randbytes
        # Granian forks its workers: each draws its own sequence, not a copy of the parent's.
        os.register_at_fork(after_in_child=generator.seed)

    def __getattr__(self, name: str):
        return getattr(os, name)


async def tune_garbage_collection() -> None:
    """At a worker's start: take what is already built out of the collector's view.

    The app, its compiled pages and the loaded modules live for good, so full
    passes need not scan them; young objects are collected less often, so full
    passes become rare. Cycles are still freed, only later.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 100)


# What the socket's code reads: the session cookie (the socket guard), host and
# origin (engine.io's origin check, links the app builds), upgrade and connection
# (engine.io's websocket check), Reflex's version subprotocol, and behind a load
# balancer X-Forwarded-For (Reflex's client IP, with trusted_proxy_hops) and
# X-Forwarded-Host / -Proto (engine.io's origin check). The user agent is not
# among them: sessions record it from the HTTP requests that create them.
SOCKET_HEADERS = frozenset(
    {
        b"cookie",
        b"connection",
        b"upgrade",
        b"host",
        b"origin",
        b"sec-websocket-protocol",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
    }
)


class ChatApp(rx.App):
    """Reflex's app, serving its event websocket past the HTTP middleware (`route_sockets_straight`)."""

    def __call__(self) -> ASGIApp:
        """Build the back end as Reflex does, then route the websocket straight to it.

        Returns:
            The ASGI app to serve.
        """
        return route_sockets_straight(self, super().__call__())


def route_sockets_straight(app: rx.App, asgi_app: ASGIApp) -> ASGIApp:
    """Hand the event websocket to Reflex's socket app directly, past both Starlette stacks.

    Reflex serves its socket inside two Starlette apps (its own and the one its
    api_transformers are mounted in), and the API wrappers sit between them. A
    websocket call lasts as long as the tab is open, and every layer it passes
    through keeps its frames and scope copies alive for that long. None of those
    layers does anything for a websocket (CORS, error pages and security headers
    are for HTTP), so the socket skips them; the Reflex contexts that the outer
    stack would set are set here instead, the same way.

    The socket also sees only the request headers something reads
    (`SOCKET_HEADERS`): engine.io, Reflex's connection data and each tab's state
    each keep a copy of them for as long as the tab is open.

    Args:
        app: The Reflex app, already built (`App.__call__` has run).
        asgi_app: What `App.__call__` returned, which serves everything else.

    Returns:
        The ASGI app to serve.
    """
    event_path = get_config().prepend_backend_path(str(Endpoint.EVENT))
    socket_app = next(
        route.app
        for route in app._api.routes  # Reflex 0.10.1 has no public handle on its socket app
        if isinstance(route, Mount) and route.path == event_path
    )

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].rstrip("/") == event_path:
            scope["headers"] = [
                (name, value) for name, value in scope["headers"] if name in SOCKET_HEADERS
            ]
            # As Reflex's own _ContextMiddleware does: each connection starts with fresh contexts.
            app._set_contexts_internal()
            await socket_app(scope, receive, send)
        else:
            await asgi_app(scope, receive, send)

    return route
