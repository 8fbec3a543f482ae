"""The split of a target's requests into focus and baseline, decided from the rollups.

``groups.trace_groups`` needs to know which requests are slow (or failed), how
many of each there are, and a few examples. The rollups answer all three without
scanning the window's spans: requests of a service come from
``rollup_operations``, whole traces (their root spans) from ``rollup_roots``, each
a histogram per minute and status.

- **Failed**: status ERROR; counts are the error rows' sums, exact.
- **Slow**: at or above the exact percentile (``quantile_cont``'s). The merged
  histogram says which bucket holds each of the two order statistics it
  interpolates between, and their rank inside it; a read of that bucket's spans
  (a couple of percent of the requests) gives each value. Requests in higher
  buckets are all slow; those of the buckets between are counted from the spans.
- **Examples**: the slowest focus requests are in the highest buckets; the rows of
  the fewest top buckets that hold enough of them name the minutes to read, and
  only those minutes' spans in those buckets are read.
- **Where to sample**: the focus and other requests of each minute (for a slow split,
  the threshold's buckets shared out by ``time_slices.minute_counts``), from which
  ``group_sample`` chooses the slices of the window its sample is drawn from.

Synthetic journeys (``journey.synthetic=true``) are left out of both groups: a
service's requests are ``rollup_operations`` less ``rollup_synthetic``, and when
``rollup_synthetic`` holds none of the service's in the window, no span read tests
for the marker (a JSON read of each span's attributes); whole traces are decided by
scan when the window holds synthetic traffic.

A target operation counted under ``(other)`` (past the cap on names) has no rows
of its own: ``labels`` returns ``None`` and the caller decides by scan.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Final

from threadline.server.aggregates import Split, Target, TimeWindow, check_split
from threadline.server.analysis import sketch, time_slices
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.group_sample import Labels
from threadline.server.storage.duckdb.health_rollups import ROOTS
from threadline.server.storage.duckdb.rollup_reads import USER_OPERATIONS, minutes
from threadline.server.storage.duckdb.rollups import MINUTE_NS, NAMES
from threadline.server.storage.duckdb.schema import ROLLUP_SYNTHETIC, SLOW_SPANS, TABLE
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    ERROR,
    NO_PARENT,
    USER_TRAFFIC,
    Fetch,
    starts_in,
    synthetic,
)


def labels(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    percentile: float,
    examples: int,
) -> Labels | None:
    check_split(percentile, examples)
    first, last = minutes(window)
    widened = TimeWindow(first * MINUTE_NS, last * MINUTE_NS)
    superset: str | None = None
    superset_params = list[object]()
    # A slow split's threshold buckets, of which only a share is slow (``minute_counts``).
    partly: tuple[int, int, float] | None = None
    if target.service is None:
        # Root spans have no synthetic counterpart in the rollups: with synthetic traffic
        # in the window, the scan decides (it leaves that traffic out).
        if fetch(
            f"SELECT 1 FROM {ROLLUP_SYNTHETIC} WHERE minute >= ? AND minute < ? LIMIT 1",
            [first, last],
        ):
            return None
        # Without it, no root span in the window carries the marker: none to test for.
        table, keys, params = ROOTS, "", []
        span_filter = f"{NO_PARENT} AND {USER_TRAFFIC}"
        span_params = list[object]()
        synthetic_free = True
    else:
        # The users' requests: the operations' rollups less the synthetic journeys'.
        table, keys, params = USER_OPERATIONS, " AND service = ?", [target.service]
        # Without a synthetic request of the service in the window, no span read below
        # need be tested for the marker (a JSON read of each span's attributes).
        synthetic_free = not fetch(
            f"SELECT 1 FROM {ROLLUP_SYNTHETIC} WHERE minute >= ? AND minute < ?"
            " AND service = ? LIMIT 1",
            [first, last, target.service],
        )
        user_only = "" if synthetic_free else f" AND NOT {synthetic()}"
        span_filter = f"{ENTRY} AND service_name = ?{user_only}"
        span_params = list[object]([target.service])
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
            # Every span of the operation, entry or not: no parent id to read (see _Spans).
            superset = f"{USER_TRAFFIC} AND service_name = ? AND name = ?{user_only}"
            superset_params = [target.service, target.operation]
    # A slow split's threshold reads every bucket, and so does the check of a superset
    # read (``_Spans``: every request of a minute and bucket). A failed split otherwise
    # reads only the failed requests' buckets (its examples are the slowest of them) and
    # counts the others per minute: a row a minute instead of one a minute and bucket
    # (at 2M spans over six hours, 2,591 rows of ``rollup_roots`` instead of 24,780).
    every_bucket = split is Split.SLOW or superset is not None
    buckets = "bucket" if every_bucket else f"CASE WHEN status = '{ERROR}' THEN bucket END"
    rows = fetch(
        f"""SELECT minute, status = '{ERROR}', {buckets}, sum(spans) FROM {table}
WHERE minute >= ? AND minute < ?{keys}
GROUP BY ALL HAVING sum(spans) <> 0""",
        [first, last, *params],
    )
    counted: dict[tuple[int, int], int] = defaultdict(int)
    total = 0
    for minute, _, bucket, spans_in in rows:
        total += int(spans_in)
        if bucket is not None:
            counted[int(minute), int(bucket)] += int(spans_in)
    spans = _Spans(fetch, widened, (span_filter, span_params), counted)
    histogram = spans.histogram
    if superset is not None:
        spans.try_first(superset, superset_params)
    roots = split is Split.SLOW and _all_roots(fetch, table, keys, [first, last, *params], total)
    if roots:
        # The threshold's buckets are above the copies' threshold, as a rule: their
        # spans are first looked for among the slow traces' copies.
        spans.try_copies()
    if split is Split.SLOW:
        focus = "duration_ns >= ?"
        if total:
            exact = sketch.exact_quantile(histogram, percentile / 100, spans.durations)
            threshold, low = exact.value, exact.low
            # Above the highest bucket the percentile touches, every request is slow;
            # within the buckets it spans, the spans say which are.
            focus_requests = exact.at_least
            focus_requests += sum(n for b, n in histogram.items() if b > exact.high)
            partly = exact.partly(histogram)
        else:
            threshold, low, focus_requests = 0.0, sketch.ZERO_BUCKET, 0
        focus_params: tuple[object, ...] = (threshold,)
        focus_rows = [(m, b, n) for m, _, b, n in rows if int(b) >= low]
        threshold_ns: float | None = threshold if total else None
    else:
        focus, focus_params, threshold_ns = f"status = '{ERROR}'", (), None
        focus_rows = [(m, b, n) for m, failed, b, n in rows if failed]
        focus_requests = sum(int(n) for _, _, n in focus_rows)
    found = spans.examples(focus, focus_params, focus_rows, examples)
    requests = [(int(m), int(n)) for m, _, _, n in rows]
    focus_counts = [(int(m), int(b), int(n)) for m, b, n in focus_rows]
    return Labels(
        window=widened,
        threshold_ns=threshold_ns,
        focus=focus,
        focus_params=focus_params,
        focus_requests=focus_requests,
        baseline_requests=total - focus_requests,
        examples=found,
        per_minute=time_slices.minute_counts(requests, focus_counts, partly),
        synthetic_free=synthetic_free,
        # Failed traces' spans are kept apart as the summaries fold (``kept_apart``).
        apart=split is Split.FAILED,
        roots=roots,
    )


def _all_roots(fetch: Fetch, table: str, keys: str, params: list[object], requests: int) -> bool:
    """Whether every one of the target's ``requests`` in the window is a trace's root:
    as many root spans as requests (``rollup_roots`` counts synthetic roots too, so a
    window holding synthetic requests never passes)."""
    if table == ROOTS:
        return True
    rows = fetch(f"SELECT sum(spans) FROM {ROOTS} WHERE minute >= ? AND minute < ?{keys}", params)
    return requests > 0 and rows[0][0] is not None and int(rows[0][0]) == requests


class _Spans:
    """Reads of the target's spans in one bucket (or a few) of the histogram: bounded
    by the window and by the bucket, a couple of percent of the requests.

    Telling an entry span reads its parent id: a unique string per span, decompressed
    a vector at a time, and a bucket's spans lie in every vector of the window (at 10M
    spans, 75 of the threshold read's 108 ms). A cheaper filter keeping a superset of
    the target's spans (every span of its operation) can be tried first: when it finds
    as many spans in each minute and bucket as the rollups count, it found exactly them
    (the rollups count what is stored); otherwise the entry spans are read. When every
    request is a trace's root, the copies of slow traces (``kept_apart``) are tried
    before both, the same way: a sixth of the span table, holding every request of the
    buckets above the threshold the fold copied by.

    ``counted``: the requests of each minute and bucket, as the rollups count them; of a
    failed split without a superset, the failed ones only (all its examples read).
    """

    def __init__(
        self,
        fetch: Fetch,
        window: TimeWindow,
        where: tuple[str, list[object]],
        counted: Mapping[tuple[int, int], int],
    ) -> None:
        self._fetch = fetch
        self._window = window
        self._where = where
        self._counted = counted
        self._superset: tuple[str, list[object]] | None = None
        self._copies = False
        self.histogram: dict[int, int] = defaultdict(int)
        for (_, bucket), spans in counted.items():
            self.histogram[bucket] += spans

    def try_first(self, superset: str, params: list[object]) -> None:
        self._superset = (superset, params)

    def try_copies(self) -> None:
        self._copies = True

    def durations(self, low: int, high: int) -> dict[int, list[int]]:
        """The durations of the spans in buckets ``low`` to ``high``, sorted, per bucket."""
        narrowest = self._superset or self._where
        tries = [(SLOW_SPANS, narrowest)] if self._copies else []
        if self._superset is not None:
            tries.append((TABLE, self._superset))
        for table, where in tries:
            found = self._durations(where, low, high, table)
            counted = self.histogram
            if all(len(found.get(b, ())) == counted.get(b, 0) for b in range(low, high + 1)):
                return found
        return self._durations(self._where, low, high, TABLE)

    def _durations(
        self, where: tuple[str, list[object]], low: int, high: int, table: str
    ) -> dict[int, list[int]]:
        rows = self._fetch(
            f"SELECT {bucket_sql('duration_ns')} AS bucket, duration_ns FROM {table}"
            f" WHERE start_ns >= ? AND start_ns < ? AND {where[0]}"
            " AND bucket BETWEEN ? AND ? ORDER BY duration_ns",
            [self._window.start_ns, self._window.end_ns, *where[1], low, high],
        )
        found: dict[int, list[int]] = defaultdict(list)
        for bucket, duration in rows:
            found[int(bucket)].append(int(duration))
        return found

    def examples(
        self,
        focus: str,
        focus_params: tuple[object, ...],
        focus_rows: list[tuple[int, int, int]],
        wanted: int,
    ) -> tuple[str, ...]:
        """The slowest focus requests' traces, reading only the minutes of the top buckets.

        The top buckets are counted in requests, but examples are distinct traces: when
        one trace holds several of the top requests, the first read finds too few and a
        second one reads every focus bucket.
        """
        per_bucket: dict[int, int] = defaultdict(int)
        for _, bucket, spans in focus_rows:
            per_bucket[int(bucket)] += int(spans)
        if not per_bucket:
            return ()
        lowest = sketch.top_buckets(per_bucket, wanted)
        focused = (focus, focus_params)
        found = self._slowest(focused, focus_rows, lowest, wanted)
        if len(found) < wanted and lowest > min(per_bucket):
            found = self._slowest(focused, focus_rows, min(per_bucket), wanted)
        return found

    def _slowest(
        self,
        focus: tuple[str, tuple[object, ...]],
        focus_rows: list[tuple[int, int, int]],
        lowest: int,
        wanted: int,
    ) -> tuple[str, ...]:
        """Up to ``wanted`` traces of the slowest focus requests in buckets from ``lowest`` up.

        The minutes holding them (a few, spread over the window) are read in one scan
        through an ``OR`` of their runs of consecutive minutes: where the spans lie in
        start order, zone maps skip the minutes between; where they do not (spans that
        arrived late or out of order), each row group is read once, not once a run.
        Past ``MAX_RANGES`` runs, one range from the first to the last is read,
        filtered by minute.
        """
        chosen = sorted({int(m) for m, b, _ in focus_rows if int(b) >= lowest})
        ranges = _minute_ranges(chosen)
        in_chosen, chosen_params = "", list[object]()
        if len(ranges) > MAX_RANGES:
            ranges = [(chosen[0], chosen[-1] + 1)]
            in_chosen = f" AND start_ns // {MINUTE_NS} IN (SELECT unnest(?::BIGINT[]))"
            chosen_params = [chosen]
        start, end = self._window.start_ns, self._window.end_ns
        starts = starts_in(
            [(max(start, a * MINUTE_NS), min(end, b * MINUTE_NS) - 1) for a, b in ranges]
        )
        where = f"{starts.fragments[0]}{in_chosen}"
        kept = set(chosen)
        expected = {
            key: n for key, n in self._counted.items() if key[0] in kept and key[1] >= lowest
        }
        if self._superset is not None and sum(expected.values()) <= SUPERSET_ROWS:
            # Every span of the operation in those minutes and buckets, each marked focus
            # or not, is few: kept when their count per minute and bucket is the rollups'.
            rows = self._fetch(
                f"""SELECT trace_id, duration_ns, start_ns // {MINUTE_NS} AS minute,
       {bucket_sql("duration_ns")} AS bucket, ({focus[0]}) AS focus
FROM {TABLE} WHERE {where} AND {self._superset[0]} AND bucket >= ?""",
                [*focus[1], *starts.params, *chosen_params, *self._superset[1], lowest],
            )
            if Counter((int(row[2]), int(row[3])) for row in rows) == expected:
                slowest: dict[str, int] = {}
                for trace_id, duration, _, _, is_focus in rows:
                    if is_focus:
                        slowest[trace_id] = max(slowest.get(trace_id, 0), int(duration))
                ordered = sorted(slowest, key=lambda trace_id: (-slowest[trace_id], trace_id))
                return tuple(ordered[:wanted])
        rows = self._fetch(
            f"""SELECT trace_id FROM {TABLE}
WHERE {where} AND {self._where[0]} AND ({focus[0]}) AND {bucket_sql("duration_ns")} >= ?
GROUP BY trace_id ORDER BY max(duration_ns) DESC, trace_id LIMIT ?""",
            [*starts.params, *chosen_params, *self._where[1], *focus[1], lowest, wanted],
        )
        return tuple(row[0] for row in rows)


# Runs of minutes an examples read names one by one; more are read as one range.
MAX_RANGES: Final = 16
# Rows of an examples read through the superset filter at most (they come back to
# Python to be checked against the rollups); past it, the entry spans are read.
SUPERSET_ROWS: Final = 10_000


def _minute_ranges(minutes: list[int]) -> list[tuple[int, int]]:
    """Sorted minutes as ``[first, end)`` runs of consecutive minutes."""
    ranges: list[tuple[int, int]] = []
    for minute in minutes:
        if ranges and ranges[-1][1] == minute:
            ranges[-1] = (ranges[-1][0], minute + 1)
        else:
            ranges.append((minute, minute + 1))
    return ranges
