"""Reflex configuration. Every field can be overridden by REFLEX_<FIELD>."""

import os

import reflex as rx

from chat_app.serving import limit_malloc_arenas, respawn_failed_workers

respawn_failed_workers()
limit_malloc_arenas()

config = rx.Config(
    app_name="chat_app",
    # The app's own database is configured by DATABASE_URL (chat_app/config.py);
    # Reflex's db_url stays unset so Reflex never touches it.
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # A tab's state is a cache of the database that every page load rebuilds,
    # so one worker keeps it in memory: Reflex's default disk manager rescans
    # its files on every write. With REFLEX_REDIS_URL, several workers share it
    # in Redis.
    state_manager_mode="redis" if os.environ.get("REFLEX_REDIS_URL") else "memory",
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="large")),
    ],
)
