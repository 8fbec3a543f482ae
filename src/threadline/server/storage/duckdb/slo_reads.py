"""SLO reads: good and total events per window, retries per edge, example traces.

``slo_counts`` answers every burn window of an SLO, and its budget window, in one
query over the rollups (``rollup_operations`` or ``rollup_edges``, minus
``rollup_synthetic``/``rollup_synthetic_edges`` unless synthetic traffic counts):
one ``sum(...) FILTER (WHERE minute >= ?)`` per window, so its cost follows the
rollup rows of the longest window, never the spans.

Windows end at ``end_ns`` and are widened to the whole minutes they touch, like
every rollup read; the current minute counts as far as it has arrived.

A latency threshold is compared bucket by bucket (``analysis/sketch.py``): an event
is good when its bucket is at most the bucket holding the threshold. That bucket's
upper bound ``γ^i`` is at most ~2% (one bucket, ``γ ≈ 1.0202``) above the
threshold, so a request up to 2% slower than the threshold may count as good, and
no request under it ever counts as bad.

``journey`` counts: a journey counts in a window when one of its traces starting in
the window touched the service, or, for an SLO with an operation, entered at that
service and operation (journeys are counted by the steps they took); it is bad when
any of its traces in the window failed. ``slo_counts`` reads them from
``journey_slo_minutes`` (``journey_sessions``, schema version 14): the windows share
their end, so a session counts in a window when its latest touching minute is in it,
and is bad there when the earlier of that and its latest failed minute is; the
sessions are kept counted per minute of those, and a window sums its minutes, like a
rollup. The sessions of traces not yet folded are counted again from their steps and
their kept counts taken out (``journey_sessions.unfolded_sessions``). When a kept
minute is at or after the read's end (steps dated in the future), or synthetic traffic counts, the
read falls back to the steps (``_scanned_counts``): the window's steps grouped once
per session (``journey_steps``, one narrow row per trace of a session, never spans),
with traces not yet folded merged from their summary rows, as ``journey_reads`` does.

A funnel step SLO (``reaches``) counts the journeys that took the step before and is
bad for those that never went on to the step (``_reach_counts``); it and
``slo_series`` still read the steps: a funnel step pairs two steps of a session, and
back-to-back windows do not share their end.

Why journeys are not summed per minute of their traces like the rollups: a journey
spans minutes, and a window counts it once, so per-minute journey counts would count
it once per minute it was active. Counting each session once, at its latest minute,
is exact for windows that end now, and needs each session's state kept at fold.

``slo_series`` gives back-to-back windows (a burn rate over time): rollup rows go to
the window holding their minute; journeys are grouped per session and window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.burn import Counts
from threadline.server.slo_queries import ExampleRow, IndicatorQuery, RetryCounts
from threadline.server.storage.duckdb import journey_sessions
from threadline.server.storage.duckdb.journey_sessions import at_least as _at_least
from threadline.server.storage.duckdb.journey_steps import COLUMNS, STEPS, step_rows
from threadline.server.storage.duckdb.journey_steps import SYNTHETIC as SYNTHETIC_STEPS
from threadline.server.storage.duckdb.rollups import EDGES, MINUTE_NS, OPERATIONS, PAIR_HORIZON_NS
from threadline.server.storage.duckdb.schema import (
    ROLLUP_RETRIES,
    ROLLUP_SYNTHETIC,
    ROLLUP_SYNTHETIC_EDGES,
    TABLE,
)
from threadline.server.storage.duckdb.slo_rollups import SPAN_ROWS
from threadline.server.storage.duckdb.sql import ENTRY, ERROR, Fetch, Row
from threadline.server.storage.duckdb.sql import synthetic as is_synthetic
from threadline.server.storage.duckdb.summaries import MERGED, SUMMARIES
from threadline.slos import Indicator

# Most example traces one read returns: a page carries a few, not a list.
MAX_EXAMPLES: Final = 20
# How long after the step before a funnel step SLO judges a journey: one that has
# not gone on yet may still be thinking. Longer than the time between the steps of
# a checkout (seconds to a couple of minutes); a page comes at most this late. Whole
# minutes: the judged windows then start on a minute, as the counts group by minute.
REACH_GRACE_NS: Final = 5 * MINUTE_NS


def threshold_bucket(threshold_ns: int) -> int:
    """The histogram bucket holding ``threshold_ns``: events in it or below are good."""
    return sketch.bucket_index(threshold_ns)


def effective_threshold_ns(threshold_ns: int) -> float:
    """The duration the rollups actually compare with: the threshold bucket's upper bound."""
    return float(sketch.GAMMA ** threshold_bucket(threshold_ns))


def _firsts(end_ns: int, windows_ns: Sequence[int]) -> tuple[int, list[int]]:
    """The minute after the last one read, and each window's first minute."""
    if not windows_ns or any(w < MINUTE_NS for w in windows_ns):
        raise ValueError("SLO windows must be at least a minute long")
    end = -(-end_ns // MINUTE_NS)
    return end, [end - -(-w // MINUTE_NS) for w in windows_ns]


def _windowed(
    fetch: Fetch, rows_sql: str, params: list[object], end: int, firsts: list[int]
) -> list[tuple[int, int]]:
    """Sums of ``n`` and ``bad`` of ``rows_sql`` (minute, n, bad) per window.

    The windows all end at ``end``, so they nest: each row is given to the shortest
    window holding it (a ``CASE`` on the minute, one group per window), and a longer
    window's sums add those of the shorter ones. Cheaper than a ``FILTER`` per window.
    """
    order = sorted(range(len(firsts)), key=lambda i: -firsts[i])  # shortest first
    ring = " ".join(f"WHEN minute >= ? THEN {rank}" for rank in range(len(order)))
    rows = fetch(
        f"SELECT CASE {ring} END AS ring, sum(n), sum(bad) FROM ({rows_sql})"
        " WHERE minute >= ? AND minute < ? GROUP BY ring",
        [*(firsts[i] for i in order), *params, min(firsts), end],
    )
    per_ring = {int(r): (int(n or 0), int(bad or 0)) for r, n, bad in rows}
    sums: list[tuple[int, int]] = [(0, 0)] * len(firsts)
    total = bad_total = 0
    for rank, index in enumerate(order):
        n, bad = per_ring.get(rank, (0, 0))
        total, bad_total = total + n, bad_total + bad
        sums[index] = (total, bad_total)
    return sums


def _operation_rows(query: IndicatorQuery) -> tuple[str, list[object]]:
    if query.indicator is Indicator.LATENCY:
        if query.threshold_ns is None:
            raise ValueError("a latency SLO needs a threshold")
        bad, bad_params = "bucket > ?", [threshold_bucket(query.threshold_ns)]
    else:
        bad, bad_params = f"status = '{ERROR}'", []
    where, where_params = "service = ?", [query.service]
    if query.operation is not None:
        where, where_params = where + " AND operation = ?", [query.service, query.operation]
    parts = [
        f"SELECT minute, spans AS n, CASE WHEN {bad} THEN spans ELSE 0 END AS bad"
        f" FROM {OPERATIONS} WHERE {where}"
    ]
    params: list[object] = [*bad_params, *where_params]
    if not query.include_synthetic:
        parts.append(
            f"SELECT minute, -spans, CASE WHEN {bad} THEN -spans ELSE 0 END"
            f" FROM {ROLLUP_SYNTHETIC} WHERE {SPAN_ROWS} AND {where}"
        )
        params += [*bad_params, *where_params]
    return " UNION ALL ".join(parts), params


def _edge_rows(query: IndicatorQuery) -> tuple[str, list[object]]:
    if query.threshold_ns is None:
        bad, bad_params = "errors", []
    else:
        bad, bad_params = (
            "CASE WHEN bucket > ? THEN calls ELSE errors END",
            [threshold_bucket(query.threshold_ns)],
        )
    pair = [query.service, query.callee]
    parts = [
        f"SELECT minute, calls AS n, {bad} AS bad FROM {EDGES}"
        " WHERE caller = ? AND callee = ? AND measure = 'latency'"
    ]
    params: list[object] = [*bad_params, *pair]
    if not query.include_synthetic:
        parts.append(
            f"SELECT minute, -calls, -({bad}) FROM {ROLLUP_SYNTHETIC_EDGES}"
            " WHERE caller = ? AND callee = ?"
        )
        params += [*bad_params, *pair]
    return " UNION ALL ".join(parts), params


def _journey_traces(query: IndicatorQuery, lo: int, hi: int) -> tuple[str, list[object]]:
    """CTEs ending in ``traces``: the step rows starting in [lo, hi), with the traces
    not yet folded merged from their summary rows (and synthetic ones when they count).

    Read from ``journey_steps``, one row per trace, as ``journey_reads`` does.
    Synthetic traces have no step: when they count, theirs are merged from their
    summaries.
    """
    probes = synthetic = ""
    synthetic_params: list[object] = []
    if query.include_synthetic:
        # Few traces (probes, drills): merged from all their summary rows.
        probes = f"""
probes AS (SELECT trace_id, {MERGED} FROM {SUMMARIES}
           WHERE trace_id IN (SELECT trace_id FROM {SYNTHETIC_STEPS}) GROUP BY trace_id),"""
        synthetic = f"""
    UNION ALL
    SELECT * FROM ({step_rows("probes", keep_synthetic=True)})
    WHERE start_ns >= ? AND start_ns < ?"""
        synthetic_params = [lo, hi]
    sql = f"""WITH fresh_ids AS (SELECT DISTINCT trace_id FROM {SUMMARIES} WHERE fresh),
fresh AS (SELECT trace_id, {MERGED} FROM {SUMMARIES}
          WHERE trace_id IN (SELECT trace_id FROM fresh_ids) GROUP BY trace_id),{probes}
traces AS (
    SELECT {COLUMNS} FROM {STEPS}
    WHERE start_ns >= ? AND start_ns < ? AND trace_id NOT IN (SELECT trace_id FROM fresh_ids)
    UNION ALL
    SELECT * FROM ({step_rows("fresh")}) WHERE start_ns >= ? AND start_ns < ?{synthetic})"""
    return sql, [lo, hi, lo, hi, *synthetic_params]


def _journey_counts(
    fetch: Fetch, query: IndicatorQuery, end: int, firsts: list[int]
) -> list[Counts]:
    """Sessions with a trace in the window touching the service (entering at the
    operation, when set); bad if a trace of theirs in the window failed.

    From ``journey_slo_minutes`` (``journey_sessions.counts``) unless the SLO counts synthetic
    traffic or a step is dated at or after ``end``; then from the steps
    (``_scanned_counts``), as before the minutes were kept.
    """
    if query.reaches is not None:
        return _reach_counts(fetch, query, end, firsts)
    if not query.include_synthetic:
        counted = journey_sessions.counts(fetch, query, end, firsts)
        if counted is not None:
            return counted
    return _scanned_counts(fetch, query, end, firsts)


def _scanned_counts(
    fetch: Fetch, query: IndicatorQuery, end: int, firsts: list[int]
) -> list[Counts]:
    """``_journey_counts`` from the steps of the budget window.

    The windows all end at ``end``, so one pass per session answers them all: a
    session counts in a window when its last touching minute is in it, and is bad
    there when its last failed minute is too (``min`` of the two). Only the traces
    that touched or failed are grouped: the others change neither.
    """
    touched, touch_params = journey_sessions.touched(query)
    traces, params = _journey_traces(query, min(firsts) * MINUTE_NS, end * MINUTE_NS)
    rows = fetch(
        f"""{traces}
SELECT touched, least(touched, coalesce(failed, -1)) AS bad, count(*) FROM (
    SELECT max(start_ns // {MINUTE_NS}) FILTER (WHERE {touched}) AS touched,
           max(start_ns // {MINUTE_NS}) FILTER (WHERE failed) AS failed
    FROM traces WHERE ({touched}) OR failed GROUP BY session_id)
WHERE touched IS NOT NULL GROUP BY ALL""",
        [*params, *touch_params, *touch_params],
    )
    totals = _at_least([(int(t), int(n)) for t, _, n in rows], firsts)
    bads = _at_least([(int(b), int(n)) for _, b, n in rows], firsts)
    return [Counts(good=t - b, total=t) for t, b in zip(totals, bads, strict=True)]


def _reach_counts(fetch: Fetch, query: IndicatorQuery, end: int, firsts: list[int]) -> list[Counts]:
    """A funnel step: sessions that took ``service`` ``operation`` (the step before),
    first in the window; good when a later trace of the session took ``reaches``.

    Each window is judged ``REACH_GRACE_NS`` late (it ends that long before
    ``end``), so a journey still between the two steps is not yet counted; its
    later step is looked for up to ``end``.

    The judged windows share their end, so one pass per session answers them all: a
    session counts in a window when its last step before the end is in it, and is
    good there when its last step followed by a ``reaches`` step is too (the first
    step of the window is then followed by one: the later step comes after both).
    """
    hi = end * MINUTE_NS
    lo = min(firsts) * MINUTE_NS - REACH_GRACE_NS
    traces, params = _journey_traces(query, lo, hi)
    rows = fetch(
        f"""{traces},
reached AS (SELECT session_id, max(start_ns) AS last FROM traces
            WHERE operation = ? GROUP BY session_id)
SELECT took // {MINUTE_NS}, went // {MINUTE_NS}, count(*) FROM (
    SELECT max(b.start_ns) AS took,
           coalesce(max(b.start_ns) FILTER (WHERE b.start_ns < r.last), -1) AS went
    FROM traces AS b LEFT JOIN reached AS r ON r.session_id = b.session_id
    WHERE b.service = ? AND b.operation = ? AND b.start_ns < ?
    GROUP BY b.session_id)
GROUP BY ALL""",
        [*params, query.reaches, query.service, query.operation, hi - REACH_GRACE_NS],
    )
    # The judged windows start ``REACH_GRACE_NS`` (whole minutes) before theirs.
    judged = [first - REACH_GRACE_NS // MINUTE_NS for first in firsts]
    totals = _at_least([(int(t), int(n)) for t, _, n in rows], judged)
    goods = _at_least([(int(w), int(n)) for _, w, n in rows], judged)
    return [Counts(good=g, total=t) for t, g in zip(totals, goods, strict=True)]


def slo_counts(
    fetch: Fetch, query: IndicatorQuery, end_ns: int, windows_ns: Sequence[int]
) -> list[Counts]:
    """``Store.slo_counts``: good and total events of each window ending at ``end_ns``."""
    end, firsts = _firsts(end_ns, windows_ns)
    if query.indicator is Indicator.JOURNEY:
        return _journey_counts(fetch, query, end, firsts)
    if query.indicator is Indicator.EDGE:
        if query.callee is None:
            raise ValueError("an edge SLO needs a callee")
        rows_sql, params = _edge_rows(query)
    else:
        rows_sql, params = _operation_rows(query)
    counts = []
    for total, bad in _windowed(fetch, rows_sql, params, end, firsts):
        # Synthetic rows subtract what the main table counted; never below zero.
        total = max(total, 0)
        bad = min(max(bad, 0), total)
        counts.append(Counts(good=total - bad, total=total))
    return counts


def slo_series(
    fetch: Fetch, query: IndicatorQuery, end_ns: int, step_ns: int, steps: int
) -> list[Counts]:
    """``Store.slo_series``: good and total events of ``steps`` back-to-back windows of
    ``step_ns``, the latest (ending at ``end_ns``) first. One read: each row or
    journey step goes to the window holding it."""
    if step_ns < MINUTE_NS or steps < 1:
        raise ValueError("an SLO series needs at least one window of at least a minute")
    end = -(-end_ns // MINUTE_NS)
    step = -(-step_ns // MINUTE_NS)
    first = end - step * steps
    if query.indicator is Indicator.JOURNEY:
        rows = _journey_series(fetch, query, end, step, steps)
    else:
        if query.indicator is Indicator.EDGE:
            if query.callee is None:
                raise ValueError("an edge SLO needs a callee")
            rows_sql, params = _edge_rows(query)
        else:
            rows_sql, params = _operation_rows(query)
        rows = fetch(
            f"SELECT (? - 1 - minute) // ? AS k, sum(n), sum(bad) FROM ({rows_sql})"
            " WHERE minute >= ? AND minute < ? GROUP BY k",
            [end, step, *params, first, end],
        )
    found = {int(k): (max(int(n or 0), 0), int(bad or 0)) for k, n, bad in rows}
    series = []
    for k in range(steps):
        total, bad = found.get(k, (0, 0))
        bad = min(max(bad, 0), total)
        series.append(Counts(good=total - bad, total=total))
    return series


def _journey_series(
    fetch: Fetch, query: IndicatorQuery, end: int, step: int, steps: int
) -> list[Row]:
    """(k, journeys, bad journeys) of each window ``k`` back from ``end``, as
    ``_journey_counts`` (and ``_reach_counts``, judging a window's step
    ``REACH_GRACE_NS`` late and its later step up to the window's end) count one."""
    lo, hi = (end - step * steps) * MINUTE_NS, end * MINUTE_NS
    window = step * MINUTE_NS
    if query.reaches is not None:
        traces, params = _journey_traces(query, lo - REACH_GRACE_NS, hi)
        return fetch(
            f"""{traces},
befores AS (
    SELECT session_id, (? - 1 - (start_ns + ?)) // ? AS k, min(start_ns) AS at
    FROM traces WHERE service = ? AND operation = ? AND start_ns < ?
    GROUP BY ALL)
SELECT k, count(*), count(*) FILTER (WHERE NOT reached) FROM (
    SELECT b.k, bool_or(r.start_ns IS NOT NULL) AS reached FROM befores AS b
    LEFT JOIN traces AS r ON r.session_id = b.session_id AND r.operation = ?
         AND r.start_ns > b.at AND r.start_ns < ? - b.k * ?
    GROUP BY b.session_id, b.k)
GROUP BY k""",
            [
                *params,
                hi,
                REACH_GRACE_NS,
                window,
                query.service,
                query.operation,
                hi - REACH_GRACE_NS,
                query.reaches,
                hi,
                window,
            ],
        )
    touched, touch_params = journey_sessions.touched(query)
    traces, params = _journey_traces(query, lo, hi)
    return fetch(
        f"""{traces}
SELECT k, count(*) FILTER (WHERE t), count(*) FILTER (WHERE t AND f) FROM (
    SELECT (? - 1 - start_ns) // ? AS k, bool_or({touched}) AS t, bool_or(failed) AS f
    FROM traces WHERE ({touched}) OR failed GROUP BY session_id, k)
GROUP BY k""",
        [*params, hi, window, *touch_params, *touch_params],
    )


def retry_counts(
    fetch: Fetch, caller: str, callee: str, end_ns: int, windows_ns: Sequence[int]
) -> list[RetryCounts]:
    """``Store.retry_counts``: calls from ``caller`` to ``callee`` and retries among them."""
    end, firsts = _firsts(end_ns, windows_ns)
    rows_sql = (
        f"SELECT minute, calls AS n, 0 AS bad FROM {EDGES}"
        " WHERE caller = ? AND callee = ? AND measure = 'latency'"
        f" UNION ALL SELECT minute, 0, retried FROM {ROLLUP_RETRIES}"
        " WHERE caller = ? AND callee = ?"
    )
    sums = _windowed(fetch, rows_sql, [caller, callee, caller, callee], end, firsts)
    return [RetryCounts(retried=retried, calls=calls) for calls, retried in sums]


def slo_examples(
    fetch: Fetch, query: IndicatorQuery, window: TimeWindow, limit: int
) -> list[ExampleRow]:
    """``Store.slo_examples``: the latest failed (or the slowest, for latency) events'
    traces in ``window``, at most ``limit`` (capped at ``MAX_EXAMPLES``)."""
    limit = max(0, min(limit, MAX_EXAMPLES))
    synthetic = "" if query.include_synthetic else f" AND NOT {is_synthetic('c')}"
    slow = query.threshold_ns is not None
    bad = f"(c.status = '{ERROR}'" + (" OR c.duration_ns > ?)" if slow else ")")
    bad_params: list[object] = [query.threshold_ns] if slow else []
    order = "c.duration_ns DESC" if query.indicator is Indicator.LATENCY else "c.start_ns DESC"
    if query.indicator is Indicator.LATENCY:
        bad, bad_params = "c.duration_ns > ?", [query.threshold_ns]
    window_params: list[object] = [window.start_ns, window.end_ns]
    if query.indicator is Indicator.EDGE:
        source = (
            f"{TABLE} AS c JOIN {TABLE} AS p"
            " ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id"
        )
        where = (
            "c.service_name = ? AND p.service_name = ? AND c.kind IN ('server', 'consumer')"
            " AND p.start_ns >= ? AND p.start_ns < ?"
        )
        params: list[object] = [
            query.callee,
            query.service,
            window.start_ns - PAIR_HORIZON_NS,
            window.end_ns + PAIR_HORIZON_NS,
        ]
    else:
        # One table: ENTRY's unqualified columns are c's.
        source = f"{TABLE} AS c"
        where = "c.service_name = ?" + (
            "" if query.indicator is Indicator.JOURNEY else f" AND {ENTRY}"
        )
        params = [query.service]
        if query.operation is not None:
            where += " AND c.name = ?"
            params.append(query.operation)
    rows = fetch(
        f"""SELECT c.trace_id, c.start_ns, c.duration_ns, c.status = '{ERROR}'
FROM {source}
WHERE {where} AND c.start_ns >= ? AND c.start_ns < ? AND {bad}{synthetic}
QUALIFY row_number() OVER (PARTITION BY c.trace_id ORDER BY {order}) = 1
ORDER BY {order}, c.trace_id LIMIT ?""",
        [*params, *window_params, *bad_params, limit],
    )
    return [ExampleRow(str(t), int(s), int(d), bool(e)) for t, s, d, e in rows]
