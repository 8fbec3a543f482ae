"""Run the server: open the store, build the app, serve until told to stop."""

from __future__ import annotations

import logging
import os
from typing import Final

import uvicorn

from threadline.server.app import create_app
from threadline.server.auth import check_exposure, load_tokens
from threadline.server.default_keys import warn_on_default_keys
from threadline.server.retention import RetentionPolicy, RetentionScheduler, parse_span_of_time
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

log = logging.getLogger("threadline.server")

# Files the server creates (the store, its write-ahead log and temporary files, which
# DuckDB creates as it goes) are readable by the server's own user only.
PRIVATE_UMASK: Final = 0o077


def serve(settings: ServerSettings) -> None:
    """Serve OTLP, the API and the UI on one port; returns after SIGINT/SIGTERM.

    Raises ``ConfigError`` before opening anything when the settings are unsafe or
    invalid (an open server on a non-loopback address, a bad token or retention).
    """
    tokens = load_tokens(settings)
    check_exposure(settings, has_tokens=tokens.enabled)
    warn_on_default_keys(settings)
    retention = RetentionPolicy.from_settings(settings)
    parse_span_of_time(settings.max_clock_skew, "max_clock_skew")  # fails before opening
    tls = settings.serves_tls
    os.umask(PRIVATE_UMASK)
    store = DuckDBStore(settings.db, max_pending_batches=settings.write_queue_batches)
    scheduler = RetentionScheduler(store, retention) if retention.enabled else None
    try:
        app = create_app(settings, store, tokens=tokens)
        if scheduler is not None:
            scheduler.start()
        log.info(
            "Threadline listening on %s://%s:%d (store %s, access control %s)",
            "https" if tls else "http",
            settings.host,
            settings.port,
            settings.db,
            f"on, {len(tokens)} tokens" if tokens.enabled else "off",
        )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            # uvicorn's own access log would print a line per OTLP request.
            access_log=False,
            ssl_certfile=settings.tls_cert if tls else None,
            ssl_keyfile=settings.tls_key if tls else None,
        )
    finally:
        if scheduler is not None:
            scheduler.stop()
        # Pending group commits finish before the file is released.
        store.close()
