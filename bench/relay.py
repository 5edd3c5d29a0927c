"""The baseline: a bare python-socketio relay with rooms and an HTTP broadcast endpoint.

No state, no database, no authentication: what pushing a message to a room's
sockets costs by itself on this machine, with the same server (granian, ASGI,
one worker) and the same socket.io path and namespace as the Reflex app.

    granian --interface asgi --host 127.0.0.1 --port 8001 bench.relay:app

- socket `/_event` (path and namespace), event `join` with a list of room
  names: the socket enters those rooms;
- `POST /broadcast` `{"room": "...", "text": "..."}`: emits `event`
  `{"text": ...}` to the room, answers `{"ok": true}` once handed over;
- `GET /ping`: "pong".
"""

from __future__ import annotations

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

NAMESPACE = "/_event"

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")


@sio.on("join", namespace=NAMESPACE)
async def join(sid: str, rooms: list) -> None:
    """Enter the rooms named (the socket's user's conversations)."""
    for room in rooms or []:
        await sio.enter_room(sid, str(room), namespace=NAMESPACE)
    await sio.emit("event", {"joined": len(rooms or [])}, to=sid, namespace=NAMESPACE)


async def broadcast(request: Request) -> JSONResponse:
    """Send `text` to every socket in `room`."""
    body = await request.json()
    await sio.emit("event", {"text": body["text"]}, room=str(body["room"]), namespace=NAMESPACE)
    return JSONResponse({"ok": True})


async def ping(_request: Request) -> PlainTextResponse:
    """Liveness."""
    return PlainTextResponse("pong")


http = Starlette(routes=[Route("/broadcast", broadcast, methods=["POST"]), Route("/ping", ping)])
app = socketio.ASGIApp(sio, other_asgi_app=http, socketio_path="_event")
