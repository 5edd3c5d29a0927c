"""Keep serving when one back-end worker process dies.

Reflex 0.10.1 starts Granian without `respawn_failed_workers`, so a worker that
exits unexpectedly (killed, out of memory, or Granian's own websocket-close
panic: emmett-framework/granian#799, #884) takes the whole server down with it.
Reflex offers no setting for it, so `rxconfig.py` turns it on here before
Reflex builds its Granian server; the other workers keep serving and the
failed one is started again.
"""

from __future__ import annotations

import functools


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
