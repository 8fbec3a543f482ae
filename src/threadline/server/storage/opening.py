"""Open the store a ``store`` URL names (see ``threadline.store_url``).

The ClickHouse store is imported only when asked for, so a DuckDB server never
loads ``clickhouse_connect`` (an optional extra, ``threadline[clickhouse]``).
"""

from __future__ import annotations

from threadline.server.storage.base import Store, StoreError
from threadline.store_url import StoreUrl


def open_store(url: StoreUrl, *, max_pending_batches: int, duckdb_threads: int = 0) -> Store:
    """A store of ``url``'s backend, its schema created or checked; ``duckdb_threads``:
    DuckDB's query threads (0: its default, one per core), for a DuckDB store only.

    Raises ``StoreError`` (never quoting the password) when it cannot be opened.
    """
    if url.backend == "duckdb":
        from threadline.server.storage.duckdb import DuckDBStore

        assert url.path is not None  # parse gives every embedded URL a path
        return DuckDBStore(
            url.path, max_pending_batches=max_pending_batches, threads=duckdb_threads
        )
    try:
        from threadline.server.storage.clickhouse.store import ClickHouseStore
    except ImportError as exc:
        raise StoreError(
            f"the store {url.redacted} needs clickhouse-connect (and chdb for chdb:// URLs): "
            f'pip install "threadline[clickhouse]" ({exc})'
        ) from exc
    return ClickHouseStore(url, max_pending_batches=max_pending_batches)
