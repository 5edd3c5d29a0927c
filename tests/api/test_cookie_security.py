"""The session cookie is Secure exactly when the browser reached the app over HTTPS."""

from __future__ import annotations

from fastapi.responses import Response
from reflex.config import get_config
from starlette.requests import Request

from chat_app.api.common import client_ip, set_session_cookie


def _request(scheme: str, headers: dict[str, str] | None = None) -> Request:
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "method": "POST",
            "path": "/api/auth/sign-in/email",
            "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("10.0.0.9", 5555),
            "server": ("chat.example", 443 if scheme == "https" else 80),
        }
    )


def _cookie(request: Request) -> str:
    response = Response()
    set_session_cookie(request, response, "token-value")
    return response.headers["set-cookie"]


def test_secure_over_https_only():
    assert "Secure" in _cookie(_request("https"))
    plain = _cookie(_request("http"))
    assert "Secure" not in plain and "HttpOnly" in plain and "SameSite=lax" in plain


def test_proxy_headers_count_only_from_a_trusted_proxy(monkeypatch):
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    assert "Secure" not in _cookie(_request("http", forwarded))  # anyone can send these headers
    assert client_ip(_request("http", forwarded)) == "10.0.0.9"
    monkeypatch.setattr(get_config(), "trusted_proxy_hops", 1)
    assert "Secure" in _cookie(_request("http", forwarded))
    assert client_ip(_request("http", forwarded)) == "203.0.113.7"
