"""Reflex configuration. Every field can be overridden by REFLEX_<FIELD>."""

import reflex as rx

config = rx.Config(
    app_name="chat_app",
    # The app's own database is configured by DATABASE_URL (chat_app/config.py);
    # Reflex's db_url is left unset so Reflex never touches it.
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="large")),
    ],
)
