"""Trace groups on ClickHouse: a target's traces split in two and what each group holds.

The same answer as the DuckDB store's ``group_rollups`` + ``groups``, in two steps:

1. **Labels**, from ``request_rollup`` (the target's entry spans, or root spans for
   whole traces, synthetic journeys left out), never a span scan: *failed* counts are
   the error rows' sums; *slow* is at or above the exact ``quantile_cont``-style
   percentile, found by reading, in the bucket the merged histogram says holds each
   of the two order statistics it interpolates between, that one value (a couple of
   percent of the requests); the examples are the slowest focus requests, read only
   in the minutes of the fewest top buckets that hold enough of them.
2. **A bounded sample**, drawn from slices of the window spread over it that the
   per-minute counts say hold enough requests of both groups (``analysis.time_slices``:
   the read of the sample's spans then covers a few runs of granules, not the whole
   window). Inside them, the first ``sample`` traces of each group in the order of
   ``cityHash64(trace_id)`` (the same on every call), found through a hash cutoff
   that admits about ``OVERSAMPLE`` times the traces needed (doubled when too few
   pass), so the target's spans are filtered, not sorted. The sample's ids are then
   read back as parameters, and the spans of those traces (where ``trace_id_ts`` says
   they start, within ``PAIR_HORIZON_NS`` of the window) give per operation the traces
   holding it, the exact self time (the union of the children's clipped intervals, by
   a window function over each parent's children) and the error origins; per
   attribute value (span and resource maps) the traces carrying it, the values per key
   and the traces per key, values on fewer than ``min_support`` focus traces dropped.

The hash differs from DuckDB's (``hash``), so a bounded sample holds other traces
than DuckDB's does; counts, thresholds and examples are exact on both, and the
ranking of what the groups hold agrees with the full scan (the agreement test).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import (
    Split,
    Target,
    TimeWindow,
    check_split,
)
from threadline.server.analysis import sketch, time_slices
from threadline.server.storage.clickhouse.pair_rollups import Names
from threadline.server.storage.clickhouse.rollup_tables import (
    ENTRY,
    ERROR,
    MINUTE_NS,
    NO_PARENT,
    USER_TRAFFIC,
    bucket,
    synthetic,
)
from threadline.server.storage.clickhouse.sql import Bound
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# The hash cutoff admits this many times the traces a group's sample needs.
OVERSAMPLE: Final = 1.5
_HASH_RANGE: Final = 2**64


@dataclass(frozen=True, slots=True)
class Labels:
    """How the target's requests split: ``focus`` is an SQL condition on one target
    span (its parameters already in the ``Bound`` it was made with)."""

    window: TimeWindow
    threshold_ns: float | None
    focus: str
    focus_requests: int
    baseline_requests: int
    examples: tuple[str, ...]
    # (focus, baseline) requests per minute: where the sample is drawn (``time_slices``).
    per_minute: Mapping[int, tuple[float, float]]


def target_spans(target: Target, window: TimeWindow, bound: Bound) -> str:
    """The target's requests in ``window``: entry spans, or root spans without a service;
    synthetic journeys' requests are in neither group."""
    where = (
        f"start_ns >= {bound.add(window.start_ns, 'Int64')}"
        f" AND start_ns < {bound.add(window.end_ns, 'Int64')} AND NOT {synthetic()}"
    )
    if target.service is None:
        return f"{where} AND {NO_PARENT} AND {USER_TRAFFIC}"
    where += f" AND {ENTRY} AND service_name = {bound.add(target.service, 'String')}"
    if target.operation is not None:
        where += f" AND name = {bound.add(target.operation, 'String')}"
    return where


def labels(
    fetch: Fetch,
    t: Tables,
    target: Target,
    split: Split,
    window: TimeWindow,
    bound: Bound,
    *,
    percentile: float,
    examples: int,
) -> Labels:
    check_split(percentile, examples)
    first, last = window.start_ns // MINUTE_NS, -(-window.end_ns // MINUTE_NS)
    widened = TimeWindow(first * MINUTE_NS, last * MINUTE_NS)
    keys = Bound()
    # A slow split's threshold buckets, of which only a share is slow (``minute_counts``).
    partly: tuple[int, int, float] | None = None
    if target.service is None:
        where = "root = 1"
    else:
        where = f"service = {keys.add(target.service, 'String')}"
        if target.operation is not None:
            where += f" AND operation = {keys.add(target.operation, 'String')}"
    # A failed split reads only the failed requests' buckets (its examples are the
    # slowest of them) and counts the others per minute; a slow split reads every bucket.
    bucketed = "bucket" if split is Split.SLOW else f"if(status = '{ERROR}', bucket, NULL)"
    rows = fetch(
        f"""SELECT minute, status = '{ERROR}' AS failed, {bucketed} AS b, sum(spans) AS n
FROM {Names(t).requests}
WHERE minute >= {keys.add(first, "Int64")} AND minute < {keys.add(last, "Int64")}
  AND synthetic = 0 AND {where}
GROUP BY minute, failed, b HAVING n != 0""",
        keys.params,
    )
    histogram: dict[int, int] = defaultdict(int)
    for _, _, b, n in rows:
        if b is not None:
            histogram[int(b)] += int(n)
    total = sum(int(row[3]) for row in rows)
    spans = _Spans(fetch, t, target_spans(target, widened, bound), bound)
    if split is Split.SLOW:
        if total:
            exact = sketch.exact_quantile(histogram, percentile / 100, spans.durations)
            threshold, low = exact.value, exact.low
            focus_requests = exact.at_least
            focus_requests += sum(n for b, n in histogram.items() if b > exact.high)
            partly = exact.partly(histogram)
        else:
            threshold, low, focus_requests = 0.0, sketch.ZERO_BUCKET, 0
        focus = f"duration_ns >= {bound.add(threshold, 'Float64')}"
        focus_rows = [(int(m), int(b), int(n)) for m, _, b, n in rows if int(b) >= low]
        threshold_ns: float | None = threshold if total else None
    else:
        focus, threshold_ns = f"status = '{ERROR}'", None
        focus_rows = [(int(m), int(b), int(n)) for m, failed, b, n in rows if failed]
        focus_requests = sum(n for _, _, n in focus_rows)
    requests = [(int(m), int(n)) for m, _, _, n in rows]
    return Labels(
        window=widened,
        threshold_ns=threshold_ns,
        focus=focus,
        focus_requests=focus_requests,
        baseline_requests=total - focus_requests,
        examples=spans.examples(focus, focus_rows, widened, examples),
        per_minute=time_slices.minute_counts(requests, focus_rows, partly),
    )


class _Spans:
    """Reads of the target's spans in a bucket (or a few) of the histogram."""

    def __init__(self, fetch: Fetch, t: Tables, where: str, bound: Bound) -> None:
        self._fetch = fetch
        self._spans = t.spans
        self._where = where
        self._bound = bound

    def durations(self, low: int, high: int) -> dict[int, list[int]]:
        """The durations of the spans in buckets ``low`` to ``high``, sorted, per bucket."""
        b = self._bound
        rows = self._fetch(
            f"SELECT {bucket('duration_ns')} AS b, duration_ns FROM {self._spans}"
            f" WHERE {self._where}"
            f" AND b BETWEEN {b.add(low, 'Int32')} AND {b.add(high, 'Int32')}"
            " ORDER BY duration_ns",
            b.params,
        )
        found: dict[int, list[int]] = defaultdict(list)
        for index, duration in rows:
            found[int(index)].append(int(duration))
        return found

    def examples(
        self, focus: str, focus_rows: list[tuple[int, int, int]], window: TimeWindow, wanted: int
    ) -> tuple[str, ...]:
        """The slowest focus requests' traces, reading only the minutes of the top
        buckets (all focus buckets when one trace holds several of the top requests)."""
        per_bucket: dict[int, int] = defaultdict(int)
        for _, b, n in focus_rows:
            per_bucket[b] += n
        if not per_bucket:
            return ()
        lowest = sketch.top_buckets(per_bucket, wanted)
        found = self._slowest(focus, focus_rows, window, lowest, wanted)
        if len(found) < wanted and lowest > min(per_bucket):
            found = self._slowest(focus, focus_rows, window, min(per_bucket), wanted)
        return found

    def _slowest(
        self,
        focus: str,
        focus_rows: list[tuple[int, int, int]],
        window: TimeWindow,
        lowest: int,
        wanted: int,
    ) -> tuple[str, ...]:
        b = self._bound
        chosen = sorted({m for m, bk, _ in focus_rows if bk >= lowest})
        low = max(window.start_ns, chosen[0] * MINUTE_NS)
        high = min(window.end_ns, (chosen[-1] + 1) * MINUTE_NS)
        rows = self._fetch(
            f"""SELECT trace_id FROM {self._spans}
WHERE {self._where} AND start_ns >= {b.add(low, "Int64")} AND start_ns < {b.add(high, "Int64")}
  AND intDiv(start_ns, {MINUTE_NS}) IN {b.add(chosen, "Array(Int64)")}
  AND ({focus}) AND {bucket("duration_ns")} >= {b.add(lowest, "Int32")}
GROUP BY trace_id ORDER BY max(duration_ns) DESC, trace_id LIMIT {b.add(wanted, "UInt32")}""",
            b.params,
        )
        return tuple(str(row[0]) for row in rows)


def _cutoff(needed: int, group: float) -> int | None:
    if group <= 0 or OVERSAMPLE * needed >= group:
        return None
    return int(_HASH_RANGE * OVERSAMPLE * needed / group)


def _widened(cutoff: int | None) -> int | None:
    if cutoff is None or cutoff * 2 >= _HASH_RANGE:
        return None
    return cutoff * 2


def _below(cutoff: int | None, b: Bound) -> str:
    return "1" if cutoff is None else f"cityHash64(trace_id) < {b.add(cutoff, 'UInt64')}"


def sample_traces(
    fetch: Fetch, t: Tables, target: Target, bound: Bound, labels: Labels, sample: int
) -> list[tuple[str, bool]]:
    """The first ``sample`` traces of each group by ``cityHash64(trace_id)``, in order,
    among the target's requests in the slices of the window that hold enough of them."""

    def draw(
        runs: list[tuple[int, int]], held: tuple[float, float]
    ) -> tuple[list[tuple[str, bool]], tuple[int, int]]:
        b = Bound(dict(bound.params))
        where = target_spans(target, labels.window, b)
        where += (
            " AND ("
            + " OR ".join(
                f"start_ns BETWEEN {b.add(low, 'Int64')} AND {b.add(high - 1, 'Int64')}"
                for low, high in runs
            )
            + ")"
        )
        found = _first_by_hash(fetch, t, where, b, labels, sample, held)
        focus = sum(1 for _, f in found if f)
        return found, (focus, len(found) - focus)

    window = labels.window
    return time_slices.drawn(
        window.start_ns, window.end_ns, labels.per_minute, MINUTE_NS, sample, draw
    )


def _first_by_hash(
    fetch: Fetch,
    t: Tables,
    where: str,
    bound: Bound,
    labels: Labels,
    sample: int,
    held: tuple[float, float],
) -> list[tuple[str, bool]]:
    """The first ``sample`` traces of each group by hash among the target spans ``where``
    keeps, which hold about ``held`` (focus, baseline) requests."""
    focus_cut, base_cut = _cutoff(sample, held[0]), _cutoff(sample, held[1])
    while True:
        b = Bound(dict(bound.params))
        focus_hash = _below(focus_cut, b)
        base_hash = _below(base_cut, b)
        limit = b.add(sample, "UInt64")
        rows = fetch(
            f"""SELECT trace_id, 1, cityHash64(trace_id) FROM (
    SELECT DISTINCT trace_id FROM {t.spans} WHERE {where} AND ({labels.focus}) AND {focus_hash}
    ORDER BY cityHash64(trace_id), trace_id LIMIT {limit})
UNION ALL
SELECT trace_id, 0, cityHash64(trace_id) FROM (
    SELECT trace_id FROM {t.spans} WHERE {where} AND {base_hash}
    GROUP BY trace_id HAVING NOT max({labels.focus})
    ORDER BY cityHash64(trace_id), trace_id LIMIT {limit})""",
            b.params,
        )
        ordered = sorted(rows, key=lambda r: (int(r[2]), str(r[0])))
        found = [(str(r[0]), bool(r[1])) for r in ordered]
        focus = sum(1 for _, f in found if f)
        short_focus = focus_cut is not None and focus < sample
        short_base = base_cut is not None and len(found) - focus < sample
        if not short_focus and not short_base:
            return found
        # Too few traces passed (several requests per trace, or chance): widen the cut.
        focus_cut = _widened(focus_cut) if short_focus else focus_cut
        base_cut = _widened(base_cut) if short_base else base_cut
