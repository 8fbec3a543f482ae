"""``/metrics`` reads: the rollups of a range of minutes summed per ``/metrics`` slot.

Grouping by slot happens in SQL (``exemplars.slot_sql``), so an answer has at most
``latency_bounds.SLOTS`` rows per operation or edge however many sketch buckets the
minutes hold, and its cost follows the rows of the minutes read.

Synthetic journeys (``journey.synthetic=true``: probes and drills) are left out as RED
leaves them out, from the rollups alone: their entry spans' counts, errors, buckets and
summed durations are subtracted from ``rollup_operations`` (``rollup_synthetic``), and
their calls from each edge's ``latency`` rows (the edge's ``synthetic`` rows).
"""

from __future__ import annotations

from typing import Final

from threadline.server.analysis import sketch
from threadline.server.metric_rows import EdgeSlot, MetricRows, OperationSlot
from threadline.server.storage.duckdb.edge_pairs import SYNTHETIC_LATENCY
from threadline.server.storage.duckdb.exemplars import slot_sql
from threadline.server.storage.duckdb.rollups import EDGES, OPERATIONS
from threadline.server.storage.duckdb.schema import ROLLUP_SYNTHETIC
from threadline.server.storage.duckdb.slo_rollups import SPAN_ROWS
from threadline.server.storage.duckdb.sql import ERROR, Fetch

# The value a sketch bucket stands for (``sketch.bucket_value``), for edge sums.
_BUCKET_VALUE: Final = (
    f"CASE WHEN bucket = {sketch.ZERO_BUCKET} THEN 0.0"
    f" ELSE 2 * pow({sketch.GAMMA!r}, bucket) / ({sketch.GAMMA!r} + 1) END"
)

# Rows of the operations' rollups, then the synthetic journeys' part of them negated:
# counts from the synthetic rollup's span rows, durations from its duration rows.
_USER_OPERATIONS: Final = f"""(
SELECT minute, service, operation, status, bucket, spans, duration_sum FROM {OPERATIONS}
UNION ALL
SELECT minute, service, operation, status, bucket,
       CASE WHEN {SPAN_ROWS} THEN -spans ELSE 0 END,
       CASE WHEN {SPAN_ROWS} THEN 0 ELSE -spans END
FROM {ROLLUP_SYNTHETIC})"""

_OPERATIONS: Final = f"""
SELECT service, operation, {slot_sql("bucket")} AS slot, sum(spans),
       coalesce(sum(spans) FILTER (WHERE status = '{ERROR}'), 0), sum(duration_sum)
FROM {_USER_OPERATIONS} WHERE minute >= ? AND minute < ?
GROUP BY ALL HAVING sum(spans) <> 0"""

_EDGES: Final = f"""
SELECT caller, callee, kind, {slot_sql("bucket")} AS slot, sum(n), sum(e),
       sum(n * {_BUCKET_VALUE})
FROM (SELECT *, CASE WHEN measure = 'latency' THEN 1 ELSE -1 END AS direction,
             direction * calls AS n, direction * errors AS e
      FROM {EDGES}
      WHERE minute >= ? AND minute < ? AND measure IN ('latency', '{SYNTHETIC_LATENCY}'))
GROUP BY ALL HAVING sum(n) <> 0"""


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
