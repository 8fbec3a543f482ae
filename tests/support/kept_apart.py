"""Which traces a DuckDB store keeps apart by hash (``failed_spans.SHARE``), told by
DuckDB's own ``hash`` of each id, so tests can expect them."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from threadline.server.storage.duckdb import failed_spans


def in_share(trace_ids: Iterable[str]) -> set[str]:
    """The ids among ``trace_ids`` that hash into the share kept apart."""
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT t FROM unnest(?::VARCHAR[]) AS ids(t) WHERE hash(t) < ?::UBIGINT",
            [sorted(set(trace_ids)), 2**64 // failed_spans.SHARE],
        ).fetchall()
    return {str(row[0]) for row in rows}
