"""Run the server: open the store, build the app, serve until told to stop."""

from __future__ import annotations

import logging

import uvicorn

from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

log = logging.getLogger("threadline.server")


def serve(settings: ServerSettings) -> None:
    """Serve OTLP, the API and the UI on one port; returns after SIGINT/SIGTERM."""
    store = DuckDBStore(settings.db, max_pending_batches=settings.write_queue_batches)
    try:
        app = create_app(settings, store)
        log.info(
            "Threadline listening on http://%s:%d (store %s)",
            settings.host,
            settings.port,
            settings.db,
        )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            # uvicorn's own access log would print a line per OTLP request.
            access_log=False,
        )
    finally:
        # Pending group commits finish before the file is released.
        store.close()
