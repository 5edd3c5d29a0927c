"""What every HTTP route shares: JSON errors, who is calling, cookies, CSRF origins."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from reflex.config import get_config
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from chat_app.config import settings
from chat_app.db import run_in_session
from chat_app.domain import sessions
from chat_app.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Throttled,
)
from chat_app.domain.sessions import Authenticated

T = TypeVar("T")

_STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (Throttled, 429),
    (NotAuthenticated, 401),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 400),
]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(Exception):
    """An HTTP error with a JSON body `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str):
        """Create the error."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, headers: dict | None = None
) -> JSONResponse:
    """Build the JSON error every route answers with."""
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure a JSON `{"code", "message"}` with a fitting status, never a 500 page."""

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        status = next((s for cls, s in _STATUS_BY_ERROR if isinstance(error, cls)), 400)
        headers = None
        if isinstance(error, Throttled):
            headers = {
                "Retry-After": str(error.retry_after),
                "X-Retry-After": str(error.retry_after),
            }
        return error_response(status, error.code, error.message, headers)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            problems.append(f"[{where}] {item.get('msg', 'Invalid input')}")
        return error_response(400, "VALIDATION_ERROR", "; ".join(problems) or "Invalid input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        # 400: FastAPI's own "There was an error parsing the body" (e.g. not UTF-8).
        code = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            error.status_code, "ERROR"
        )
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, _error: Exception) -> JSONResponse:
        return error_response(500, "INTERNAL_SERVER_ERROR", "Something went wrong")


# The methods `unknown_api_route` answers for (and may list in `Allow`).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def unknown_api_route(request: Request) -> JSONResponse:
    """Answer a request no API route took: JSON, never Reflex's HTML 404 page.

    Registered last, for everything under `/api/` and every method: without it
    such a request falls through to the Reflex app mounted behind the API. A path
    that other routes serve for other methods gets 405 with `Allow`, else 404.
    """
    allowed = []
    for method in HTTP_METHODS:
        probe = {**request.scope, "method": method}
        for route in request.app.router.routes:
            if isinstance(route, Mount) or getattr(route, "endpoint", None) is unknown_api_route:
                continue  # Reflex's catch-all mount, and this route itself
            if route.matches(probe)[0] is Match.FULL:
                allowed.append(method)
                break
    if allowed:
        return error_response(
            405, "METHOD_NOT_ALLOWED", "Method Not Allowed", {"Allow": ", ".join(allowed)}
        )
    return error_response(404, "NOT_FOUND", "Not Found")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def trusted_origins(request: Request) -> set[str]:
    """The origins allowed to make cookie-authenticated writes and to be redirected to.

    The app's own origin, Reflex's `deploy_url` (the page's origin under
    `reflex run`), and any listed in `CHAT_APP_TRUSTED_ORIGINS` (comma-separated).
    """
    origins = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
    if deploy := _origin_of(get_config().deploy_url or ""):
        origins.add(deploy)
    for extra in os.environ.get("CHAT_APP_TRUSTED_ORIGINS", "").split(","):
        if extra := _origin_of(extra.strip()):
            origins.add(extra)
    return origins


def check_origin(request: Request, *, cookie_used: bool) -> None:
    """Refuse a cross-site write (CSRF): an untrusted Origin, or none with a cookie.

    Raises:
        ApiError: 403 MISSING_OR_NULL_ORIGIN or INVALID_ORIGIN.
    """
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        if cookie_used:
            raise ApiError(403, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
        return
    if origin not in trusted_origins(request):
        raise ApiError(403, "INVALID_ORIGIN", "Invalid origin")


@dataclass(frozen=True)
class Credentials:
    """The raw session token a request presented, and how."""

    token: str | None
    from_cookie: bool


def request_credentials(request: Request) -> Credentials:
    """Read `Authorization: Bearer …` (scripts) or else the session cookie (browsers)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credentials(token=value.strip(), from_cookie=False)
    token = request.cookies.get(settings.session_cookie_name)
    return Credentials(token=token or None, from_cookie=bool(token))


def presented_token(request: Request) -> str | None:
    """The session token the request presents (None without one), after the CSRF check on writes."""
    credentials = request_credentials(request)
    check_origin(request, cookie_used=credentials.from_cookie)
    return credentials.token


async def optional_auth(request: Request) -> Authenticated | None:
    """Resolve the caller's session (None if absent or dead), enforcing CSRF on writes."""
    token = presented_token(request)
    if token is None:
        return None
    return await run_in_session(sessions.authenticate, token=token)


async def require_auth(
    authenticated: Authenticated | None = Depends(optional_auth),
) -> Authenticated:
    """Like `optional_auth`, but answer 401 UNAUTHORIZED without a live session."""
    if authenticated is None:
        raise ApiError(401, "UNAUTHORIZED", "Unauthorized")
    return authenticated


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Give the browser its session: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    response.set_cookie(
        settings.session_cookie_name,
        token,
        max_age=int(settings.session_ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=served_over_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Tell the browser to forget its session cookie."""
    response.set_cookie(
        settings.session_cookie_name,
        "",
        max_age=0,
        path="/",
        httponly=True,
        samesite="lax",
        secure=served_over_https(request),
    )


def _forwarded(request: Request, header: str) -> str | None:
    """The value the outermost trusted proxy put in `header` (Reflex's `trusted_proxy_hops`)."""
    hops = get_config().trusted_proxy_hops
    if not hops:
        return None
    values = [
        value.strip() for value in request.headers.get(header, "").split(",") if value.strip()
    ]
    return values[-hops] if len(values) >= hops else None


def served_over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a trusted proxy)."""
    return request.url.scheme == "https" or _forwarded(request, "x-forwarded-proto") == "https"


def client_ip(request: Request) -> str:
    """The browser's address: the peer, or what a trusted proxy says it is."""
    return _forwarded(request, "x-forwarded-for") or (request.client.host if request.client else "")


@dataclass(frozen=True)
class Caller:
    """A request's session token, past the CSRF check but not yet checked against the database.

    `run` checks it and does the route's work in one database session and one
    trip off the event loop, where `require_auth` and then the work take two of
    each: on the busiest route, sending a message, that is a transaction and a
    thread hand-over fewer per message. The session's slide (its expiry, its last
    use) is committed with the work's writes, or after the work if it only read;
    not at all if the work fails.
    """

    token: str

    async def run(self, work: Callable[..., T], /, **kwargs: Any) -> T:
        """Run `work(session=…, user_id=<the caller's id>, **kwargs)` if the session is live.

        Args:
            work: A domain function taking keyword-only `session` and `user_id`.
            **kwargs: Its other keyword arguments.

        Returns:
            What `work` returned.

        Raises:
            NotAuthenticated: (401) if the session is unknown, revoked or expired.
        """
        return await run_in_session(_as_session_user, token=self.token, work=work, kwargs=kwargs)


def _as_session_user(
    *, session: Any, token: str, work: Callable[..., T], kwargs: dict[str, Any]
) -> T:
    user_id = sessions.authenticated_user_id(session=session, token=token, commit=False)
    if user_id is None:
        raise NotAuthenticated("Unauthorized")
    result = work(session=session, user_id=user_id, **kwargs)
    if session.in_transaction():  # the work only read: store the slide, if any, now
        session.commit()
    return result


async def caller(request: Request) -> Caller:
    """The caller, to authenticate along with the work (`Caller.run`); 401 without credentials.

    Enforces CSRF on writes, like `optional_auth`.
    """
    token = presented_token(request)
    if token is None:
        raise ApiError(401, "UNAUTHORIZED", "Unauthorized")
    return Caller(token=token)
