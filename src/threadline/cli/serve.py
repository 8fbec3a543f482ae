"""`threadline serve`: the OTLP receiver, API and UI on one port."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC

from threadline import settings as config
from threadline import store_url


def _existing_file_option(name: str, help_text: str) -> Callable[[FC], FC]:
    """An option naming a file that must exist (its path is passed on as text)."""
    return click.option(
        name, type=click.Path(dir_okay=False, exists=True), default=None, help=help_text
    )


@click.command()
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port for OTLP, API and UI [default: 4318].")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file to store spans in [default: ./threadline.duckdb].",
)
@click.option(
    "--store",
    default=None,
    help="Store URL: duckdb:///file, chdb:///dir, clickhouse[s]://user:pw@host:port/db "
    "[default: duckdb:///<db>].",
)
@click.option(
    "--max-request-bytes", type=int, default=None, help="Largest OTLP body accepted (413 above)."
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes decoding OTLP requests [default: one per CPU core; 1: in the server].",
)
@click.option(
    "--duckdb-threads",
    type=int,
    default=None,
    help="Threads DuckDB queries run on [default: one per CPU core]; fewer leave cores "
    "to the decoding workers.",
)
@_existing_file_option("--tls-cert", "PEM certificate: serve HTTPS only (with --tls-key).")
@_existing_file_option("--tls-key", "PEM private key of --tls-cert.")
@_existing_file_option(
    "--tokens-file", "Access tokens, one `role token [name]` a line (see docs/security.md)."
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Allow a non-loopback --host with no tokens: anyone who can connect reads all spans.",
)
def serve(
    host: str | None,
    port: int | None,
    db: Path | None,
    store: str | None,
    max_request_bytes: int | None,
    workers: int | None,
    duckdb_threads: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    tokens_file: str | None,
    insecure: bool | None,
) -> None:
    """Receive OTLP/HTTP at /v1/traces and serve the API at /api."""
    try:
        settings = config.load(
            config.ServerSettings,
            {
                "host": host,
                "port": port,
                "db": db,
                "store": store,
                "max_request_bytes": max_request_bytes,
                "workers": workers,
                "duckdb_threads": duckdb_threads,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "tokens_file": tokens_file,
                "insecure": insecure,
            },
        )
        store_url.parse(settings.store, default_db=settings.db)  # fails before loading
    except config.ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    # The server (DuckDB, Arrow, FastAPI) is loaded here, not when the command line starts.
    from threadline.server.runner import serve as run_server
    from threadline.server.storage.base import StoreError

    # The runner logs the address, store and access control once the settings pass its checks.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        run_server(settings)
    except config.ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except StoreError as exc:
        # A file held by another server is the usual cause; one line says so.
        raise click.ClickException(str(exc)) from exc


COMMANDS: list[click.Command] = [serve]
