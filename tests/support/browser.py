"""Debian's Chromium, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import shutil

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str:
    """Where Debian's chromium is; .ci/run installs it when missing."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path
