"""Example traces for ``/metrics`` histogram buckets (``rollup_exemplars``, schema version 8).

Per minute × service × operation × slot (the span between two ``/metrics`` bounds,
``analysis/latency_bounds.py``) the table keeps the first entry span's trace that
arrived for it, preferring a failing span, then the slowest, among those of one
commit. The writer appends at most one row per key and commit, and only for keys the
table does not hold (an anti-join over the batch's minutes, which zone maps prune
to), so the table has one row per key: at most ``SLOTS`` rows per operation-minute.

Rows go with their traces: tail sampling and erasure delete the rows of the traces
they delete, retention those of spans that started before its cutoff, all in the
same transaction, so every exemplar ``/metrics`` shows names a stored trace.
"""

from __future__ import annotations

from typing import Final

from threadline.server.analysis import latency_bounds
from threadline.server.metric_rows import SlotExemplar
from threadline.server.storage.duckdb.schema import ROLLUP_EXEMPLARS
from threadline.server.storage.duckdb.sql import Fetch

TABLE: Final = ROLLUP_EXEMPLARS
_COLUMNS: Final = "minute, service, operation, slot, trace_id, duration_ns, start_ns"


def slot_sql(bucket: str) -> str:
    """``latency_bounds.slot`` in SQL: the ``/metrics`` slot of a sketch bucket."""
    cases = " ".join(
        f"WHEN {bucket} <= {int(limit)} THEN {index}"
        for index, limit in enumerate(latency_bounds.BOUND_BUCKETS)
    )
    return f"CASE {cases} ELSE {len(latency_bounds.BOUND_BUCKETS)} END"


def insert(candidates: str) -> str:
    """Keep one of ``candidates`` per key the table lacks; params: first and last minute.

    ``candidates`` selects ``minute, service, operation, slot, trace_id, duration_ns,
    start_ns, failed`` (the rollups' entry spans of a batch).
    """
    return f"""
INSERT INTO {TABLE} ({_COLUMNS})
SELECT c.minute, c.service, c.operation, c.slot, c.trace_id, c.duration_ns, c.start_ns
FROM ({candidates}) AS c
ANTI JOIN (SELECT minute, service, operation, slot FROM {TABLE}
           WHERE minute BETWEEN ? AND ?) AS e
  ON c.minute = e.minute AND c.service = e.service AND c.operation = e.operation
 AND c.slot = e.slot
QUALIFY row_number() OVER (
    PARTITION BY c.minute, c.service, c.operation, c.slot
    ORDER BY c.failed DESC, c.duration_ns DESC, c.trace_id) = 1"""


def forget_traces(doomed: str) -> str:
    """Delete the rows of every trace in the relation ``doomed``."""
    return f"DELETE FROM {TABLE} WHERE trace_id IN (SELECT DISTINCT trace_id FROM {doomed})"


# Param: the retention cutoff (Unix ns).
FORGET_BEFORE: Final = f"DELETE FROM {TABLE} WHERE start_ns < ?"


def latest(fetch: Fetch, first_minute: int, last_minute: int) -> list[SlotExemplar]:
    """The newest example of each service × operation × slot in ``[first, last)`` minutes."""
    rows = fetch(
        f"""SELECT service, operation, slot, trace_id, duration_ns, start_ns FROM {TABLE}
WHERE minute >= ? AND minute < ?
QUALIFY row_number() OVER (PARTITION BY service, operation, slot
                           ORDER BY minute DESC, start_ns DESC, trace_id) = 1
ORDER BY service, operation, slot""",
        [first_minute, last_minute],
    )
    return [
        SlotExemplar(str(s), str(o), int(k), str(t), int(d), int(b)) for s, o, k, t, d, b in rows
    ]
