"""Which traces a DuckDB store keeps apart by hash (``kept_apart.SHARE``), told by
DuckDB's own ``hash`` of each id, so tests can expect them; and the hour of traces the
tests of the copies kept apart write, and how they write it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import duckdb

from support.spans import span_record
from support.times import MINUTE, MS, T0, S
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore, kept_apart

HOUR: Final = TimeWindow(T0, T0 + 60 * MINUTE)
# Traces of the hour: one every six seconds.
TRACES: Final = 600
WAIT_S: Final = 60


def slow(index: int) -> bool:
    """Whether the ``index``-th request of ``tail_request`` is in its operation's tail."""
    return index % 10 == 0


def tail_request(trace_id: str, index: int, **fields: object) -> list[SpanRecord]:
    """web GET /pay (root) → payments charge, the ``index``-th request of the hour (one
    every six seconds): every tenth root takes 300 ms (``slow``), the others 10 to 34
    ms, so their operation has a spread and its 85th percentile lies among them.
    ``fields`` go on both spans (a session id)."""
    start = T0 + index * 6 * S
    took = 300 * MS if slow(index) else (10 + index % 25) * MS
    root = span_record(trace_id, "a1", None, "web", "GET /pay", start, start + took, **fields)
    charge = span_record(
        trace_id, "a2", "a1", "payments", "charge", start + MS, start + took - MS,
        kind=SpanKind.SERVER, **fields,
    )  # fmt: skip
    return [root, charge]


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
