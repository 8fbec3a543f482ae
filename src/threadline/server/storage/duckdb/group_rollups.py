"""The split of a target's requests into focus and baseline, decided from the rollups.

``groups.trace_groups`` needs to know which requests are slow (or failed), how
many of each there are, and a few examples. The rollups answer all three without
scanning the window's spans: requests of a service come from
``rollup_operations``, whole traces (their root spans) from ``rollup_roots``, each
a histogram per minute and status.

- **Failed**: status ERROR; counts are the error rows' sums, exact.
- **Slow**: at or above the latency bucket holding the percentile. The threshold
  is that bucket's lower edge, within the sketch's error (2%) of the exact
  percentile; the focus condition is the bucket itself (``bucket_sql(duration) >=
  b``, the expression the rollups were written with), so the counts summed from
  the buckets are exactly the spans the condition selects.
- **Examples**: the slowest focus requests are in the highest buckets; the rows of
  the fewest top buckets that hold enough of them name the minutes to read, and
  only those minutes' spans in those buckets are read.

A target operation counted under ``(other)`` (past the cap on names) has no rows
of its own: ``labels`` returns ``None`` and the caller decides by scan.
"""

from __future__ import annotations

import math
from collections import defaultdict

from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.analysis import sketch
from threadline.server.storage.duckdb.groups import Labels
from threadline.server.storage.duckdb.health_rollups import ROOTS
from threadline.server.storage.duckdb.rollup_reads import minutes
from threadline.server.storage.duckdb.rollups import (
    MINUTE_NS,
    NAMES,
    OPERATIONS,
    bucket_sql,
)
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import ENTRY, ERROR, NO_PARENT, USER_TRAFFIC, Fetch


def labels(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    percentile: float,
    examples: int,
) -> Labels | None:
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if examples < 1:
        raise ValueError(f"examples must be at least 1, got {examples}")
    first, last = minutes(window)
    widened = TimeWindow(first * MINUTE_NS, last * MINUTE_NS)
    if target.service is None:
        table, keys, params = ROOTS, "", []
        span_filter, span_params = f"{NO_PARENT} AND {USER_TRAFFIC}", list[object]()
    else:
        table, keys, params = OPERATIONS, " AND service = ?", [target.service]
        span_filter, span_params = f"{ENTRY} AND service_name = ?", list[object]([target.service])
        if target.operation is not None:
            kept = fetch(
                f"SELECT 1 FROM {NAMES} WHERE service = ? AND operation = ?",
                [target.service, target.operation],
            )
            if not kept:
                return None
            keys += " AND operation = ?"
            params.append(target.operation)
            span_filter += " AND name = ?"
            span_params.append(target.operation)
    rows = fetch(
        f"""SELECT minute, status = '{ERROR}', bucket, sum(spans) FROM {table}
WHERE minute >= ? AND minute < ?{keys}
GROUP BY ALL HAVING sum(spans) <> 0""",
        [first, last, *params],
    )
    histogram: dict[int, int] = defaultdict(int)
    for _, _, bucket, spans in rows:
        histogram[int(bucket)] += int(spans)
    total = sum(histogram.values())
    threshold: float | None = None
    if split is Split.SLOW:
        cut = _bucket_at(histogram, percentile / 100) if total else sketch.ZERO_BUCKET
        threshold = _lower_edge(cut) if total else None
        focus = f"{bucket_sql('duration_ns')} >= ?"
        focus_params: tuple[object, ...] = (cut,)
        focus_rows = [(m, b, n) for m, _, b, n in rows if int(b) >= cut]
    else:
        focus, focus_params = f"status = '{ERROR}'", ()
        focus_rows = [(m, b, n) for m, failed, b, n in rows if failed]
    focus_requests = sum(int(n) for _, _, n in focus_rows)
    found = _examples(
        fetch, widened, span_filter, span_params, focus, focus_params, focus_rows, examples
    )
    return Labels(
        window=widened,
        threshold_ns=threshold,
        focus=focus,
        focus_params=focus_params,
        focus_requests=focus_requests,
        baseline_requests=total - focus_requests,
        examples=found,
    )


def _bucket_at(histogram: dict[int, int], q: float) -> int:
    """The bucket of the order statistic at or above the ``q`` quantile's rank.

    ``quantile_cont`` interpolates between ranks ``floor`` and ``ceil`` of
    ``q × (n − 1)``; every request at or above the interpolated value ranks at
    least at the ceiling, so that one's bucket starts the slow group.
    """
    total = sum(histogram.values())
    rank = math.ceil(q * (total - 1) - 1e-9)  # the margin absorbs 0.9 × 10 = 9.000…02
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if rank < seen:
            return bucket
    return max(histogram)


def _lower_edge(bucket: int) -> float:
    """The largest duration below bucket ``bucket`` (it holds ``(γ^(b−1), γ^b]``)."""
    if bucket <= sketch.ZERO_BUCKET:
        return 0.0
    return float(sketch.GAMMA ** (bucket - 1))


def _examples(
    fetch: Fetch,
    window: TimeWindow,
    span_filter: str,
    span_params: list[object],
    focus: str,
    focus_params: tuple[object, ...],
    focus_rows: list[tuple[int, int, int]],
    wanted: int,
) -> tuple[str, ...]:
    """The slowest focus requests' traces, reading only the minutes of the top buckets."""
    per_bucket: dict[int, int] = defaultdict(int)
    for _, bucket, spans in focus_rows:
        per_bucket[int(bucket)] += int(spans)
    lowest, held = None, 0
    for bucket in sorted(per_bucket, reverse=True):
        lowest, held = bucket, held + per_bucket[bucket]
        if held >= wanted:
            break
    if lowest is None:
        return ()
    chosen = sorted({int(m) for m, b, _ in focus_rows if int(b) >= lowest})
    low = max(window.start_ns, chosen[0] * MINUTE_NS)
    high = min(window.end_ns, (chosen[-1] + 1) * MINUTE_NS)
    rows = fetch(
        f"""SELECT trace_id FROM {TABLE}
WHERE start_ns >= ? AND start_ns < ? AND start_ns // {MINUTE_NS} IN (SELECT unnest(?::BIGINT[]))
  AND {span_filter} AND ({focus}) AND {bucket_sql("duration_ns")} >= ?
GROUP BY trace_id ORDER BY max(duration_ns) DESC, trace_id LIMIT ?""",
        [low, high, chosen, *span_params, *focus_params, lowest, wanted],
    )
    return tuple(row[0] for row in rows)
