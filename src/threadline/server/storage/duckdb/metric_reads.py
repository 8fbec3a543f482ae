"""``/metrics`` reads: the rollups of a range of minutes summed per ``/metrics`` slot.

Grouping by slot happens in SQL (``exemplars.slot_sql``), so an answer has at most
``latency_bounds.SLOTS`` rows per operation or edge however many sketch buckets the
minutes hold, and its cost follows the rows of the minutes read.
"""

from __future__ import annotations

from typing import Final

from threadline.server.analysis import sketch
from threadline.server.metric_rows import EdgeSlot, MetricRows, OperationSlot
from threadline.server.storage.duckdb.exemplars import slot_sql
from threadline.server.storage.duckdb.rollups import EDGES, OPERATIONS
from threadline.server.storage.duckdb.sql import ERROR, Fetch

# The value a sketch bucket stands for (``sketch.bucket_value``), for edge sums.
_BUCKET_VALUE: Final = (
    f"CASE WHEN bucket = {sketch.ZERO_BUCKET} THEN 0.0"
    f" ELSE 2 * pow({sketch.GAMMA!r}, bucket) / ({sketch.GAMMA!r} + 1) END"
)

_OPERATIONS: Final = f"""
SELECT service, operation, {slot_sql("bucket")} AS slot, sum(spans),
       coalesce(sum(spans) FILTER (WHERE status = '{ERROR}'), 0), sum(duration_sum)
FROM {OPERATIONS} WHERE minute >= ? AND minute < ?
GROUP BY ALL HAVING sum(spans) <> 0"""

_EDGES: Final = f"""
SELECT caller, callee, kind, {slot_sql("bucket")} AS slot, sum(calls), sum(errors),
       sum(calls * {_BUCKET_VALUE})
FROM {EDGES} WHERE minute >= ? AND minute < ? AND measure = 'latency'
GROUP BY ALL HAVING sum(calls) <> 0"""


def metric_rows(fetch: Fetch, first_minute: int, last_minute: int) -> MetricRows:
    params = [first_minute, last_minute]
    return MetricRows(
        operations=tuple(
            OperationSlot(str(s), str(o), int(k), int(n), int(e), int(d))
            for s, o, k, n, e, d in fetch(_OPERATIONS, params)
        ),
        edges=tuple(
            EdgeSlot(str(a), str(b), str(kind), int(k), int(n), int(e), float(d))
            for a, b, kind, k, n, e, d in fetch(_EDGES, params)
        ),
    )
