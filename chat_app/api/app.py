"""The HTTP API as one FastAPI app, which Reflex mounts itself inside."""

from __future__ import annotations

from fastapi import FastAPI

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
