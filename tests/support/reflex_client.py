"""A websocket client that speaks Reflex's event protocol like a browser tab, for attacks and load.

It connects to `/_event` with a client token and (optionally) a session cookie,
sends events by handler name with the router data a page would send, and keeps
every frame it receives so a test can search them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import socketio
from reflex.state import BaseState

NAMESPACE = "/_event"


def handler_name(state_cls: type[BaseState], handler: str) -> str:
    """The name the browser uses for `state_cls.handler` on the wire."""
    return f"{state_cls.get_full_name()}.{handler}"


class ReflexSocket:
    """One tab's websocket."""

    def __init__(self, base_url: str, *, cookie: str | None = None, token: str | None = None):
        """Prepare a socket to the app at `base_url` with this session cookie and client token."""
        self.base_url = base_url.rstrip("/")
        self.cookie = cookie
        self.token = token or str(uuid.uuid4())
        self.frames: list[Any] = []
        self.raw_frames: list[str] = []
        self._client = socketio.AsyncClient(reconnection=False)
        self._client.on("event", self._on_event, namespace=NAMESPACE)
        self._arrived = asyncio.Event()

    async def _on_event(self, data: Any) -> None:
        if isinstance(data, str):
            self.raw_frames.append(data)
            data = json.loads(data)
        else:
            self.raw_frames.append(json.dumps(data))
        self.frames.append(data)
        self._arrived.set()

    async def connect(self) -> None:
        """Open the socket as a page of this app would."""
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base_url))
        headers = {"Origin": origin}
        if self.cookie:
            headers["Cookie"] = self.cookie
        await self._client.connect(
            f"{self.base_url}?token={self.token}",
            headers=headers,
            transports=["websocket"],
            socketio_path="/_event",
            namespaces=[NAMESPACE],
            wait_timeout=10,
        )

    async def send(
        self,
        name: str,
        payload: dict | None = None,
        *,
        path: str = "/messages",
        query: dict[str, str] | None = None,
    ) -> None:
        """Emit the event `name` as if from a page at `path` with these query/route params."""
        router_data: dict[str, Any] = {"pathname": path, "asPath": path}
        if query:
            router_data["query"] = query
        await self._client.emit(
            "event",
            {"name": name, "payload": payload or {}, "router_data": router_data},
            namespace=NAMESPACE,
        )

    async def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Wait until no frame has arrived for `quiet` seconds (or `timeout` passes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), quiet)
            except TimeoutError:
                return

    def text(self) -> str:
        """Everything received, as one string to search."""
        return "\n".join(self.raw_frames)

    def values_of(self, state_cls: type[BaseState], var: str) -> list[Any]:
        """Every value of `state_cls.var` that the frames carried, in order."""
        key = state_cls.get_full_name()
        found = []
        for frame in self.frames:
            delta = frame.get("delta", {}) if isinstance(frame, dict) else {}
            for name, value in delta.get(key, {}).items():
                if name.split("_rx_state_")[0] == var:
                    found.append(value)
        return found

    def delta_value(self, state_cls: type[BaseState], var: str) -> Any:
        """The last value of `state_cls.var` that any frame carried (None if never sent)."""
        values = self.values_of(state_cls, var)
        return values[-1] if values else None

    async def close(self) -> None:
        """Disconnect."""
        await self._client.disconnect()


def run_async(coroutine_function, *args: Any) -> Any:
    """Run `coroutine_function(*args)` to completion on a fresh event loop in its own thread.

    Playwright's sync API keeps an event loop running in the test's thread, so
    `asyncio.run` there would refuse.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function(*args))).result()
