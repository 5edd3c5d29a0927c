"""`/sign-up` and `/sign-in`."""

from __future__ import annotations

import reflex as rx

from chat_app.components.auth_forms import sign_in_form, sign_up_form
from chat_app.components.layout import page_frame


def sign_up_page() -> rx.Component:
    """The sign-up form."""
    return page_frame(sign_up_form())


def sign_in_page() -> rx.Component:
    """The sign-in form."""
    return page_frame(sign_in_form())
