"""Test-only shortcuts for the messaging browser tests: set up through the API, open pages signed in."""

from __future__ import annotations

import time
import uuid

import httpx

SESSION_COOKIE = "chat_app.session_token"


def start_conversation(app_url: str, creator, *others) -> int:
    """Create (or reopen) a conversation through the API; returns its id."""
    response = httpx.post(
        f"{app_url}/api/conversations",
        json={"emails": [other.email for other in others]},
        headers={"Authorization": f"Bearer {creator.token}"},
        timeout=20,
    )
    response.raise_for_status()
    return response.json()["id"]


def send_as(app_url: str, token: str, conversation_id: int, text: str) -> None:
    """Send a message through the API as the holder of `token`."""
    httpx.post(
        f"{app_url}/api/conversations/{conversation_id}/messages",
        json={"content": text, "client_message_id": uuid.uuid4().hex},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ).raise_for_status()


def page_signed_in_as(new_context, app_url: str, account, **context_options):
    """A page in a new browser context holding `account`'s session cookie."""
    context = new_context(**context_options)
    context.add_cookies([{"name": SESSION_COOKIE, "value": account.token, "url": app_url}])
    return context.new_page()


def send_reliably(server, token: str, conversation_id: int, text: str, client_id: str) -> None:
    """Send like a careful client: on a dropped connection, retry with the same id."""
    for _ in range(40):
        try:
            response = httpx.post(
                f"{server.url}/api/conversations/{conversation_id}/messages",
                json={"content": text, "client_message_id": client_id},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            if response.status_code in (200, 201):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"could not send {text!r}")
