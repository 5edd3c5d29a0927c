"""The account page's sections: profile, password, devices."""

from __future__ import annotations

import reflex as rx

from chat_app.components.layout import field_error
from chat_app.states.account import AccountState, DeviceRow
from chat_app.states.session import SessionState


def profile_section() -> rx.Component:
    """Change the display name."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Profile", size="4"),
                rx.text("Email: ", rx.text.strong(SessionState.user_email), size="2"),
                rx.text("Display name", as_="label", html_for="name", size="2", weight="medium"),
                rx.hstack(
                    rx.input(
                        name="name",
                        id="name",
                        default_value=SessionState.user_name,
                        key=SessionState.user_name,
                        width="100%",
                    ),
                    rx.button("Save", type="submit", id="save-name"),
                    width="100%",
                ),
                field_error(AccountState.name_error, id="name-error"),
                rx.cond(
                    AccountState.name_saved,
                    rx.text("Saved", color_scheme="green", size="2", id="name-saved"),
                ),
                spacing="2",
                width="100%",
            ),
            on_submit=AccountState.rename,
            reset_on_submit=False,
        ),
        width="100%",
    )


def _password_input(label: str, name: str, autocomplete: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(name=name, id=name, type="password", auto_complete=autocomplete, width="100%"),
        field_error(AccountState.password_errors.get(name, ""), id=f"{name}-error"),
        spacing="1",
        width="100%",
    )


def password_section() -> rx.Component:
    """Change the password; every other device is signed out."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Password", size="4"),
                _password_input("Current password", "current_password", "current-password"),
                _password_input("New password", "new_password", "new-password"),
                _password_input("Repeat new password", "confirm_password", "new-password"),
                field_error(AccountState.password_errors.get("form", ""), id="password-error"),
                rx.text(
                    "Changing your password signs out every other device.",
                    size="1",
                    color_scheme="gray",
                ),
                rx.button("Change password", type="submit", id="change-password"),
                rx.cond(
                    AccountState.password_saved,
                    rx.text(
                        "Password changed; other devices were signed out",
                        color_scheme="green",
                        size="2",
                        id="password-saved",
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=AccountState.change_password,
            reset_on_submit=True,
        ),
        width="100%",
    )


def _device_row(device: DeviceRow) -> rx.Component:
    return rx.hstack(
        rx.icon("monitor-smartphone", size=20),
        rx.vstack(
            rx.hstack(
                rx.text(device["device"], weight="medium", size="2"),
                rx.cond(
                    device["current"],
                    rx.badge("This device", color_scheme="green", class_name="this-device"),
                ),
            ),
            rx.text(
                device["ip_address"],
                " · last used ",
                rx.moment(device["last_used_at"], from_now=True),
                size="1",
                color_scheme="gray",
            ),
            spacing="0",
        ),
        rx.spacer(),
        rx.button(
            "Revoke",
            on_click=AccountState.revoke(device["id"]),
            variant="soft",
            color_scheme="red",
            size="1",
            class_name="revoke-session",
        ),
        width="100%",
        align="center",
        class_name="device-row",
    )


def devices_section() -> rx.Component:
    """Every signed-in device, with Revoke each and "Sign out everywhere else"."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Signed-in devices", size="4"),
                rx.spacer(),
                rx.button(
                    "Sign out everywhere else",
                    on_click=AccountState.revoke_others,
                    variant="outline",
                    size="1",
                    id="revoke-others",
                ),
                width="100%",
                align="center",
            ),
            field_error(AccountState.sessions_error, id="sessions-error"),
            rx.foreach(AccountState.devices, _device_row),
            spacing="3",
            width="100%",
            id="devices",
        ),
        width="100%",
    )
