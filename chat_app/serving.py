"""How the back-end worker processes run: respawned when one dies, with tuned garbage collection.

Reflex 0.10.1 starts Granian without `respawn_failed_workers`, so a worker that
exits unexpectedly (killed, out of memory, or Granian's own websocket-close
panic: emmett-framework/granian#799, #884) takes the whole server down with it.
Reflex offers no setting for it, so `rxconfig.py` turns it on here before
Reflex builds its Granian server; the other workers keep serving and the
failed one is started again.

A full garbage collection scans every tracked object: with 1,000 open tabs it
paused a worker's event loop for 50-140 ms every 10-20 s under load, the tail of
the delivery latency. `tune_garbage_collection` runs as each worker starts.
"""

from __future__ import annotations

import functools
import gc


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


async def tune_garbage_collection() -> None:
    """At a worker's start: take what is already built out of the collector's view.

    The app, its compiled pages and the loaded modules live for good, so full
    passes need not scan them; young objects are collected less often, so full
    passes become rare. Cycles are still freed, only later.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 100)
