"""Security headers on every HTTP response the app serves: pages, assets and API alike."""

from __future__ import annotations

from urllib.parse import urlsplit

from reflex.config import get_config
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _origins() -> list[str]:
    config = get_config()
    origins = []
    for url in (config.api_url, config.deploy_url):
        parts = urlsplit(url or "")
        if parts.scheme and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
            socket_scheme = "wss" if parts.scheme == "https" else "ws"
            origins.append(f"{socket_scheme}://{parts.netloc}")
    return sorted(set(origins))


def content_security_policy() -> str:
    """The strictest policy Reflex 0.10's front end runs under.

    It needs inline scripts (the prerendered pages hydrate from inline
    `<script>`s), `eval` (Reflex runs `rx.call_script` through it) and inline
    styles (Radix and Emotion); everything else comes from this origin only.
    """
    connect = " ".join(["'self'", *_origins()])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def add_security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap the whole ASGI app so each HTTP response carries the security headers."""
    headers = [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]
    names = {name for name, _ in headers}

    async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers
