"""Test-only helpers for driving the app's pages in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SESSION_COOKIE = "chat_app.session_token"

# The production build serves `/messages/`; the redirects may or may not add the slash.
MESSAGES_URL = re.compile(r"/messages/?(\?.*)?$")
SIGN_IN_URL = re.compile(r"/sign-in/?(\?.*)?$")
ACCOUNT_URL = re.compile(r"/account/?(\?.*)?$")

# The first page load in a fresh context compiles nothing, but the socket and
# the on_load round trip can take a moment on a busy machine.
expect.set_options(timeout=15_000)


def wait_until_interactive(page: Page, selector: str = "#submit") -> None:
    """Wait until React has hydrated `selector`, so a click runs the Reflex handler.

    The production build prerenders the HTML: before hydration a click on a
    submit button would be a native GET form submission instead.
    """
    page.wait_for_selector(selector)
    page.wait_for_function(
        """selector => {
            const element = document.querySelector(selector);
            return !!element && Object.keys(element).some(key => key.startsWith("__reactProps"));
        }""",
        arg=selector,
    )


def fill_form(page: Page, **fields: str) -> None:
    """Type each value into the input with that id, after the form is hydrated."""
    wait_until_interactive(page)
    for field, value in fields.items():
        page.locator(f"#{field}").fill(value)


def sign_up(page: Page, *, name: str, email: str, password: str) -> None:
    """Open /sign-up, submit the form (does not wait for where it leads)."""
    page.goto("/sign-up")
    fill_form(page, name=name, email=email, password=password)
    page.locator("#submit").click()


def sign_in(page: Page, *, email: str, password: str, path: str = "/sign-in") -> None:
    """Submit the sign-in form (opening `path` first unless it is None)."""
    if path is not None:
        page.goto(path)
    fill_form(page, email=email, password=password)
    page.locator("#submit").click()


def sign_in_to_messages(page: Page, *, email: str, password: str, name: str) -> None:
    """Sign in through the UI and wait until /messages greets `name`."""
    sign_in(page, email=email, password=password)
    page.wait_for_url(MESSAGES_URL)
    expect(page.locator("#signed-in-name")).to_have_text(name)


def session_cookie(context) -> dict | None:
    """The context's session cookie as Playwright reports it, or None."""
    return next((c for c in context.cookies() if c["name"] == SESSION_COOKIE), None)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot into test-artifacts/ for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
