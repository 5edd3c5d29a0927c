"""Every response carries the security headers, and the pages run under that CSP."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.ui import MESSAGES_URL, sign_up, wait_until_interactive
from tests.conftest import unique_email

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@pytest.mark.parametrize(
    "path",
    ["/", "/sign-in/", "/messages/", "/favicon.ico", "/api/auth/get-session", "/api/nope", "/ping"],
)
def test_security_headers_on_every_kind_of_response(app_server, path):
    response = httpx.get(f"{app_server.url}{path}", timeout=20)
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (path, name)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    assert "object-src 'none'" in policy
    assert re.search(r"connect-src 'self'", policy)


def test_the_app_runs_under_its_policy_without_violations(new_context, make_account):
    other = make_account("Policy Peer")
    page = new_context().new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: violations.append(str(error)))
    sign_up(page, name="Policy Checker", email=unique_email("csp"), password="password123")
    page.wait_for_url(MESSAGES_URL)
    wait_until_interactive(page, "#new-conversation")
    page.locator("#new-conversation").click()
    page.locator("#new-conversation-emails").fill(other.email)
    page.locator("#start-conversation").click()
    page.wait_for_url(re.compile(r"/messages/\d+"))
    wait_until_interactive(page, "#composer")
    page.locator("#composer").fill("under a strict policy")
    page.locator("#composer").press("Enter")
    expect(page.locator(".message-body")).to_have_text(["under a strict policy"])
    page.goto("/account")
    expect(page.locator(".device-row").first).to_be_visible()
    assert violations == []
