"""Run the server: open the store, build the app, serve until told to stop."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Final

import uvicorn

from threadline.server.app import create_app
from threadline.server.auth import check_exposure, load_tokens
from threadline.server.default_keys import warn_on_default_keys
from threadline.server.http_protocol import protocol_with_header_timeout
from threadline.server.ingest.workers import worker_count
from threadline.server.retention import RetentionPolicy, RetentionScheduler, parse_span_of_time
from threadline.server.storage.opening import open_store
from threadline.settings import ConfigError, ServerSettings
from threadline.store_url import parse as parse_store_url

log = logging.getLogger("threadline.server")

# Files the server creates (the store, its write-ahead log and temporary files, which
# DuckDB creates as it goes) are readable by the server's own user only.
PRIVATE_UMASK: Final = 0o077

# Cyclic garbage collection tuned for a server that builds millions of short-lived
# objects per large read (a 100k-span trace view): with Python's defaults (700, 10,
# 10) assembling a 20k-span trace ran ~400 young and 3 full collections, each full
# one holding the interpreter lock for up to 0.7 s, which every other thread (the
# event loop answering probes included) waits out. Larger young generations and
# rare full collections cut the longest pause to ~0.15 s and the read time in half;
# reference counting still frees everything acyclic at once, and young collections
# still find the cycles that die young.
GC_THRESHOLDS: Final = (10_000, 10, 1000)

# How long a thread may keep the interpreter lock while another waits for it (Python's
# default is 5 ms). The store's writer thread runs a commit as some 30 statements and
# takes the lock back after each one, while requests are decoded on another thread:
# with 5 ms a one-worker server took in 56k spans/s, with 0.5 ms 62–66k, and reads did
# not slow (``docs/performance.md``, "One decoding thread").
SWITCH_INTERVAL_S: Final = 0.0005


def serve(settings: ServerSettings) -> None:
    """Serve OTLP, the API and the UI on one port; returns after SIGINT/SIGTERM.

    Raises ``ConfigError`` before opening anything when the settings are unsafe or
    invalid (an open server on a non-loopback address, a bad token or retention).
    """
    tokens = load_tokens(settings)
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    check_exposure(settings, has_tokens=tokens.enabled)
    warn_on_default_keys(settings)
    retention = RetentionPolicy.from_settings(settings)
    parse_span_of_time(settings.max_clock_skew, "max_clock_skew")  # fails before opening
    store_url = parse_store_url(settings.store, default_db=settings.db)
    tls = settings.serves_tls
    if settings.duckdb_threads < 0:
        raise ConfigError(
            f"duckdb_threads must be 0 (one per CPU core) or more, got {settings.duckdb_threads}"
        )
    os.umask(PRIVATE_UMASK)
    store = open_store(
        store_url,
        max_pending_batches=settings.write_queue_batches,
        duckdb_threads=settings.duckdb_threads,
    )
    scheduler = RetentionScheduler(store, retention) if retention.enabled else None
    try:
        app = create_app(settings, store, tokens=tokens)
        if scheduler is not None:
            scheduler.start()
        workers = worker_count(settings)
        log.info(
            "Threadline listening on %s://%s:%d (store %s, access control %s, %s)",
            "https" if tls else "http",
            settings.host,
            settings.port,
            store_url.redacted,  # never the password
            f"on, {len(tokens)} tokens" if tokens.enabled else "off",
            f"decoding in {workers} worker processes" if workers > 1 else "decoding in process",
        )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            # uvicorn's own access log would print a line per OTLP request.
            access_log=False,
            # Slow clients: headers must arrive within header_timeout_s (the body has
            # its own deadline, body_timeout_s, where ingest reads it).
            http=protocol_with_header_timeout(settings.header_timeout_s),
            ssl_certfile=settings.tls_cert if tls else None,
            ssl_keyfile=settings.tls_key if tls else None,
        )
    finally:
        if scheduler is not None:
            scheduler.stop()
        # Pending group commits finish before the file is released.
        store.close()
