"""`/api/auth/*`: the Better Auth email-and-password API, same paths and JSON shapes."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from chat_app.api.common import (
    ApiError,
    clear_session_cookie,
    client_ip,
    optional_auth,
    request_credentials,
    require_auth,
    set_session_cookie,
    trusted_origins,
)
from chat_app.clock import isoformat
from chat_app.db import run_in_session, run_password_work
from chat_app.domain import accounts, sessions
from chat_app.domain.errors import DomainError
from chat_app.domain.sessions import Authenticated
from chat_app.models import AuthSession, User
from chat_app.realtime import push, topics

router = APIRouter(prefix="/api/auth", tags=["auth"])
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class SignUpBody(BaseModel):
    """POST /sign-up/email."""

    name: str = Field(max_length=1000)
    email: str = Field(max_length=1000)
    password: str = Field(max_length=1000)


class SignInBody(BaseModel):
    """POST /sign-in/email."""

    email: str = Field(max_length=1000)
    password: str = Field(max_length=1000)


class RevokeSessionBody(BaseModel):
    """POST /revoke-session: sessions are revoked by id (tokens are not stored)."""

    id: int = Field(ge=1, le=2**63 - 1)  # a 64-bit key: larger ones overflow the driver


class ChangePasswordBody(BaseModel):
    """POST /change-password."""

    currentPassword: str = Field(max_length=1000)  # noqa: N815 (Better Auth's name)
    newPassword: str = Field(max_length=1000)  # noqa: N815
    revokeOtherSessions: bool = False  # noqa: N815


def user_json(user: User) -> dict:
    """A user as Better Auth shows one."""
    return {
        "id": str(user.id),
        "name": user.name,
        "email": user.email,
        "emailVerified": False,
        "createdAt": isoformat(user.created_at),
        "updatedAt": isoformat(user.updated_at),
    }


def session_json(auth_session: AuthSession, *, current_id: int | None = None) -> dict:
    """A session as Better Auth shows one, without its token (only a hash is stored)."""
    return {
        "id": str(auth_session.id),
        "userId": str(auth_session.user_id),
        "createdAt": isoformat(auth_session.created_at),
        "updatedAt": isoformat(auth_session.last_used_at),
        "expiresAt": isoformat(auth_session.expires_at),
        "ipAddress": auth_session.ip_address,
        "userAgent": auth_session.user_agent,
        "current": auth_session.id == current_id,
    }


async def _start_session(request: Request, user: User) -> tuple[AuthSession, str]:
    return await run_in_session(
        sessions.create_session,
        user_id=user.id,
        user_agent=request.headers.get("user-agent", ""),
        ip_address=client_ip(request),
    )


@router.post("/sign-up/email")
async def sign_up(body: SignUpBody, request: Request, _: object = Depends(optional_auth)):
    """Create an account and sign in: 200 {token, user} and the session cookie."""
    user = await run_password_work(
        accounts.sign_up, name=body.name, email=body.email, password=body.password
    )
    _, token = await _start_session(request, user)
    response = JSONResponse({"token": token, "user": user_json(user)})
    set_session_cookie(request, response, token)
    return response


@router.post("/sign-in/email")
async def sign_in(body: SignInBody, request: Request, _: object = Depends(optional_auth)):
    """Check credentials: 200 {redirect, token, user} and the cookie; 401 or 429 else."""
    user, _, token = await run_password_work(
        sessions.sign_in_and_create_session,
        email=body.email,
        password=body.password,
        ip_address=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    response = JSONResponse({"redirect": False, "token": token, "user": user_json(user)})
    set_session_cookie(request, response, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, authenticated: Authenticated | None = Depends(optional_auth)):
    """Revoke the caller's session (if any) and clear the cookie: 200 {success: true}."""
    if authenticated is not None:
        await run_in_session(sessions.revoke_token, token=request_credentials(request).token)
        push.publish([authenticated.user.id], topics.SESSIONS_CHANGED)
    response = JSONResponse({"success": True})
    clear_session_cookie(request, response)
    return response


@router.get("/get-session")
async def get_session(
    request: Request, authenticated: Authenticated | None = Depends(optional_auth)
):
    """200 {session, user}, or 200 null (clearing a dead cookie)."""
    if authenticated is None:
        response = JSONResponse(None, headers=_NO_STORE)
        if request_credentials(request).from_cookie:
            clear_session_cookie(request, response)
        return response
    return JSONResponse(
        {
            "session": session_json(
                authenticated.auth_session, current_id=authenticated.auth_session.id
            ),
            "user": user_json(authenticated.user),
        },
        headers=_NO_STORE,
    )


@router.get("/list-sessions")
async def list_sessions(authenticated: Authenticated = Depends(require_auth)):
    """The caller's live sessions, most recently used first; `current` marks this one."""
    found = await run_in_session(sessions.list_sessions, user_id=authenticated.user.id)
    current = authenticated.auth_session.id
    return JSONResponse(
        [session_json(item, current_id=current) for item in found], headers=_NO_STORE
    )


@router.post("/revoke-session")
async def revoke_session(
    body: RevokeSessionBody, authenticated: Authenticated = Depends(require_auth)
):
    """Revoke one of the caller's sessions by id: 200 {status: true}; 404 if not theirs."""
    await run_in_session(sessions.revoke_session, user_id=authenticated.user.id, session_id=body.id)
    push.publish([authenticated.user.id], topics.SESSIONS_CHANGED)
    return {"status": True}


@router.post("/revoke-other-sessions")
async def revoke_other_sessions(authenticated: Authenticated = Depends(require_auth)):
    """Revoke every session of the caller but this one: 200 {status: true}."""
    await run_in_session(
        sessions.revoke_other_sessions,
        user_id=authenticated.user.id,
        keep_session_id=authenticated.auth_session.id,
    )
    push.publish([authenticated.user.id], topics.SESSIONS_CHANGED)
    return {"status": True}


@router.post("/change-password")
async def change_password(
    body: ChangePasswordBody,
    request: Request,
    authenticated: Authenticated = Depends(require_auth),
):
    """Change the password. With revokeOtherSessions, every old session ends and a new one starts."""
    user_id = authenticated.user.id
    try:
        user = await run_password_work(
            accounts.change_password,
            user_id=user_id,
            current_password=body.currentPassword,
            new_password=body.newPassword,
        )
    except DomainError as error:
        if error.code == "INVALID_PASSWORD":
            raise ApiError(400, "INVALID_PASSWORD", "Invalid password") from error
        raise
    if not body.revokeOtherSessions:
        return {"token": None, "user": user_json(user)}
    await run_in_session(sessions.revoke_other_sessions, user_id=user_id, keep_session_id=None)
    _, token = await _start_session(request, user)
    push.publish([user_id], topics.SESSIONS_CHANGED)
    response = JSONResponse({"token": token, "user": user_json(user)})
    set_session_cookie(request, response, token)
    return response


def _redirect_target(request: Request, return_to: str, path: str) -> str:
    origin = return_to.rstrip("/")
    if origin not in trusted_origins(request):
        origin = ""  # a relative redirect stays on this site
    if not path.startswith("/") or path.startswith("//") or urlsplit(path).netloc:
        path = "/messages"
    return origin + path


@router.get("/ticket", include_in_schema=False)
async def redeem_ticket(
    request: Request, ticket: str = "", next: str = "/messages", return_to: str = ""
):
    """Finish a sign-in made over the websocket: spend the ticket, set the cookie, go on."""
    try:
        _, token = await run_in_session(
            sessions.redeem_sign_in_ticket,
            ticket=ticket,
            user_agent=request.headers.get("user-agent", ""),
            ip_address=client_ip(request),
        )
    except DomainError:
        return RedirectResponse(_redirect_target(request, return_to, "/sign-in"), status_code=303)
    response = RedirectResponse(_redirect_target(request, return_to, next), status_code=303)
    response.headers.update(_NO_STORE)
    set_session_cookie(request, response, token)
    return response


@router.get("/sign-out/complete", include_in_schema=False)
async def finish_sign_out(request: Request, return_to: str = "") -> Response:
    """Clear the cookie after the page signed out over the websocket, then show sign-in."""
    response = RedirectResponse(_redirect_target(request, return_to, "/sign-in"), status_code=303)
    clear_session_cookie(request, response)
    return response
