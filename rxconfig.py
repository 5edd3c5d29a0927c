"""Reflex configuration. Every field can be overridden by REFLEX_<FIELD>."""

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
    # so it lives in the memory of the worker holding the tab's socket, even
    # with several workers: Reflex's default disk manager rescans its files on
    # every write, and its Redis manager costs six round trips per tab per push.
    # With REFLEX_REDIS_URL, Redis records which worker holds which socket and
    # carries pushes to that worker; a tab that lands on another worker
    # rebuilds its state there, as after a restart.
    state_manager_mode="memory",
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="large")),
    ],
)
