"""The HTTP API as one FastAPI app, served beside Reflex's own back end."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from chat_app.api import auth, conversations
from chat_app.api.common import HTTP_METHODS, install_error_handlers, unknown_api_route


def create_api() -> FastAPI:
    """Build the API: `/api/auth/*`, `/api/conversations/*`, JSON errors, OpenAPI at `/api/openapi.json`."""
    api = FastAPI(
        title="chat_app API",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(api)
    api.include_router(auth.router)
    api.include_router(conversations.router)
    # Last: anything else under /api/ gets a JSON 404/405, not the Reflex page.
    api.add_api_route(
        "/api/{path:path}",
        unknown_api_route,
        methods=list(HTTP_METHODS),
        include_in_schema=False,
    )
    return api


API_PREFIX = "/api/"


def serve_api_beside(reflex_app: ASGIApp) -> ASGIApp:
    """Send HTTP requests under /api/ to the API, and everything else straight to Reflex.

    Reflex could mount itself inside the API app instead, but then every open
    websocket would also hold the API's middleware stack for its whole life.
    """
    api = create_api()

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            await api(scope, receive, send)
        else:
            await reflex_app(scope, receive, send)

    return route
