"""Which traces a DuckDB store keeps apart by hash (``kept_apart.SHARE``), told by
DuckDB's own ``hash`` of each id, so tests can expect them; and the hour of traces the
tests of the copies kept apart write, and how they write it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import duckdb

from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore, kept_apart

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
HOUR: Final = TimeWindow(T0, T0 + 60 * MINUTE)
# Traces of the hour: one every six seconds.
TRACES: Final = 600
WAIT_S: Final = 60


def write(store: DuckDBStore, records: list[SpanRecord]) -> None:
    """Write ``records`` in one batch and wait until they are stored."""
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def in_share(trace_ids: Iterable[str]) -> set[str]:
    """The ids among ``trace_ids`` that hash into the share kept apart."""
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT t FROM unnest(?::VARCHAR[]) AS ids(t) WHERE hash(t) < ?::UBIGINT",
            [sorted(set(trace_ids)), 2**64 // kept_apart.SHARE],
        ).fetchall()
    return {str(row[0]) for row in rows}
