"""Spans that start in the future are moved back to when they were received.

Retention deletes by start time and the size cap deletes the oldest starts first, so
a span dated in the year 2200 (a host's clock gone wrong, or a hostile client) would
never be old enough to go and would push every other span out before it. A span
whose start is more than ``max_clock_skew`` after the server received it is
therefore moved back to start at the receive time, its duration kept; its original
start is kept in the attribute ``threadline.start_clamped_from_ns`` and it is
counted (``future_starts_clamped`` on ``/readyz``).

Moved rather than refused: one service's wrong clock should not cost its spans, nor
make an exporter drop the valid spans sent in the same request.
"""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pyarrow.compute as pc

from threadline.conventions import CLAMPED_FROM
from threadline.server.batch import SpanBatch, dumps

__all__ = ["CLAMPED_FROM", "FutureStarts", "clamp_future_starts"]


class FutureStarts:
    """Counts spans whose start was moved back; shared by every request."""

    __slots__ = ("_count", "_lock")

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def add(self, spans: int) -> None:
        with self._lock:
            self._count += spans


def clamp_future_starts(
    batch: SpanBatch, received_ns: int, max_skew_ns: int
) -> tuple[SpanBatch, int]:
    """``batch`` with starts later than ``received_ns + max_skew_ns`` moved back; how many."""
    table = batch.table
    starts = table.column("start_ns")
    limit = received_ns + max_skew_ns
    latest = pc.max(starts).as_py()
    if latest is None or latest <= limit:  # the common case: one pass, nothing to move
        return batch, 0
    late = pc.greater(starts, pa.scalar(limit, pa.int64()))
    moved = int(pc.sum(late).as_py() or 0)
    if not moved:
        return batch, 0
    durations = table.column("duration_ns")
    new_starts = pc.if_else(late, pa.scalar(received_ns, pa.int64()), starts)
    new_ends = pc.if_else(
        late, pc.add(durations, pa.scalar(received_ns, pa.int64())), table.column("end_ns")
    )
    attributes = table.column("attributes").to_pylist()
    originals = starts.to_pylist()
    for index, is_late in enumerate(late.to_pylist()):
        if is_late:
            values = json.loads(attributes[index])
            values[CLAMPED_FROM] = str(originals[index])
            attributes[index] = dumps(values)
    for name, column in (
        ("start_ns", new_starts),
        ("end_ns", new_ends),
        ("attributes", pa.array(attributes, pa.string())),
    ):
        table = table.set_column(
            table.schema.get_field_index(name), table.schema.field(name), column
        )
    return SpanBatch(table), moved
