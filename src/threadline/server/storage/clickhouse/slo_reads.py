"""SLO reads on ClickHouse: good and total events per window, retries per edge, examples.

The counts read the rollups of ``rollup_tables``, never spans, as the DuckDB store's
``slo_reads`` does, with the same rules:

- windows end at ``end_ns``, widened to the whole minutes they touch; they nest, so
  each row goes to the shortest window holding it (one ``multiIf`` ring per row) and
  a longer window adds the shorter ones' sums: one query for every window;
- ``errors``/``latency`` read the entry spans of ``request_rollup``, synthetic rows
  left out unless the SLO counts them; a latency threshold compares by histogram
  bucket (an event in the threshold's bucket is good: at most ~2% over it);
- ``edge`` and ``retry_counts`` read ``pair_rollup`` (calls of every kind);
- ``journey`` reads sessions from ``trace_rollup``, one merged row per trace (its
  rows within ``PAIR_HORIZON_NS`` of the window, partitions by day pruned): a
  journey counts in a window when one of its traces starting there touched the
  service (or, with an operation, was entered there); it is bad when any of its
  traces in the window failed. A funnel step (``reaches``) counts the journeys that
  took the step before, bad when none of their later traces took ``reaches``.

Examples are a bounded read of the window's spans, as the contract says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.burn import Counts
from threadline.server.slo_queries import ExampleRow, IndicatorQuery, RetryCounts
from threadline.server.storage.clickhouse.pair_rollups import Names
from threadline.server.storage.clickhouse.rollup_tables import (
    ENTRY,
    ERROR,
    MINUTE_NS,
    PAIR_HORIZON_NS,
    synthetic,
)
from threadline.server.storage.clickhouse.sql import Bound
from threadline.server.storage.clickhouse.tables import Fetch, Tables
from threadline.slos import Indicator

# Most example traces one read returns, as on DuckDB.
MAX_EXAMPLES: Final = 20
# How long after the step before a funnel step SLO judges a journey (as on DuckDB).
REACH_GRACE_NS: Final = 5 * MINUTE_NS


def _firsts(end_ns: int, windows_ns: Sequence[int]) -> tuple[int, list[int]]:
    """The minute after the last one read, and each window's first minute."""
    if not windows_ns or any(w < MINUTE_NS for w in windows_ns):
        raise ValueError("SLO windows must be at least a minute long")
    end = -(-end_ns // MINUTE_NS)
    return end, [end - -(-w // MINUTE_NS) for w in windows_ns]


def _windowed(
    fetch: Fetch, rows_sql: str, bound: Bound, end: int, firsts: list[int]
) -> list[tuple[int, int]]:
    """Sums of ``n`` and ``bad`` of ``rows_sql`` (minute, n, bad) per window."""
    order = sorted(range(len(firsts)), key=lambda i: -firsts[i])  # shortest first
    ring = ", ".join(
        f"minute >= {bound.add(firsts[i], 'Int64')}, {rank}" for rank, i in enumerate(order)
    )
    low, high = bound.add(min(firsts), "Int64"), bound.add(end, "Int64")
    rows = fetch(
        f"SELECT multiIf({ring}, -1) AS ring, sum(n), sum(bad) FROM ({rows_sql})"
        f" WHERE minute >= {low} AND minute < {high} GROUP BY ring",
        bound.params,
    )
    per_ring = {int(r): (int(n or 0), int(bad or 0)) for r, n, bad in rows}
    sums: list[tuple[int, int]] = [(0, 0)] * len(firsts)
    total = bad_total = 0
    for rank, index in enumerate(order):
        n, bad = per_ring.get(rank, (0, 0))
        total, bad_total = total + n, bad_total + bad
        sums[index] = (total, bad_total)
    return sums


def _operation_rows(names: Names, query: IndicatorQuery, bound: Bound) -> str:
    if query.indicator is Indicator.LATENCY:
        if query.threshold_ns is None:
            raise ValueError("a latency SLO needs a threshold")
        bad = f"bucket > {bound.add(sketch.bucket_index(query.threshold_ns), 'Int32')}"
    else:
        bad = f"status = '{ERROR}'"
    where = f"service = {bound.add(query.service, 'String')}"
    if query.operation is not None:
        where += f" AND operation = {bound.add(query.operation, 'String')}"
    if not query.include_synthetic:
        where += " AND synthetic = 0"
    return (
        f"SELECT minute, spans AS n, if({bad}, spans, 0) AS bad FROM {names.requests} WHERE {where}"
    )


def _edge_rows(names: Names, query: IndicatorQuery, bound: Bound) -> str:
    bad = f"status = '{ERROR}'"
    if query.threshold_ns is not None:
        limit = bound.add(sketch.bucket_index(query.threshold_ns), "Int32")
        bad = f"({bad} OR bucket > {limit})"
    where = (
        f"caller = {bound.add(query.service, 'String')}"
        f" AND callee = {bound.add(query.callee, 'String')}"
    )
    if not query.include_synthetic:
        where += " AND synthetic = 0"
    return f"SELECT minute, calls AS n, if({bad}, calls, 0) AS bad FROM {names.pairs} WHERE {where}"


def journey_traces(names: Names, query: IndicatorQuery, lo: int, hi: int, bound: Bound) -> str:
    """One merged ``trace_rollup`` row per trace of a session starting in ``[lo, hi)``:
    session_id, start_ns, service, operation (the root's), failed, services."""
    low, high = bound.add(lo, "Int64"), bound.add(hi, "Int64")
    # A trace's rows start where its spans do: those within the horizon of the range
    # hold every span of a trace that started in it (as the pair counts assume).
    reach_low = bound.add(lo - PAIR_HORIZON_NS, "Int64")
    reach_high = bound.add(hi + PAIR_HORIZON_NS, "Int64")
    real = "" if query.include_synthetic else " AND max(synthetic) = 0"
    return f"""SELECT session_id, first_ns AS start_ns, splitByChar('\\x1f', root)[1] AS service,
       arrayElement(splitByChar('\\x1f', root), 2) AS operation, failed, services
FROM (
    SELECT trace_id, min(start_ns) AS first_ns, min(session_id) AS session_id,
           max(root) AS root, sum(errors) > 0 AS failed,
           groupUniqArrayArray(services) AS services
    FROM {names.traces}
    WHERE start_ns >= {reach_low} AND start_ns < {reach_high}
    GROUP BY trace_id
    HAVING first_ns >= {low} AND first_ns < {high} AND session_id IS NOT NULL{real})"""


def _journey_counts(
    fetch: Fetch, names: Names, query: IndicatorQuery, end: int, firsts: list[int]
) -> list[Counts]:
    if query.reaches is not None:
        return _reach_counts(fetch, names, query, end, firsts)
    bound = Bound()
    if query.operation is None:
        touched = f"has(services, {bound.add(query.service, 'String')})"
    else:
        touched = (
            f"service = {bound.add(query.service, 'String')}"
            f" AND operation = {bound.add(query.operation, 'String')}"
        )
    traces = journey_traces(names, query, min(firsts) * MINUTE_NS, end * MINUTE_NS, bound)
    windows = ", ".join(
        f"(session_id, max(touched AND minute >= {bound.add(first, 'Int64')}),"
        f" max(failed AND minute >= {bound.add(first, 'Int64')}))"
        for first in firsts
    )
    # Per session: for each window, whether it touched and whether a trace failed.
    rows = fetch(
        f"""SELECT arrayJoin(arrayEnumerate(flags)) AS w,
       countIf(flags[w].2 = 1), countIf(flags[w].2 = 1 AND flags[w].3 = 1)
FROM (SELECT [{windows}] AS flags
      FROM (SELECT session_id, intDiv(start_ns, {MINUTE_NS}) AS minute,
                   toUInt8({touched}) AS touched, toUInt8(failed) AS failed
            FROM ({traces}))
      GROUP BY session_id)
GROUP BY w ORDER BY w""",
        bound.params,
    )
    found = {int(w): (int(total), int(bad)) for w, total, bad in rows}
    return [
        Counts(good=total - bad, total=total)
        for total, bad in (found.get(i + 1, (0, 0)) for i in range(len(firsts)))
    ]


def _reach_counts(
    fetch: Fetch, names: Names, query: IndicatorQuery, end: int, firsts: list[int]
) -> list[Counts]:
    """A funnel step: sessions that took ``service`` ``operation`` first in the window
    (judged ``REACH_GRACE_NS`` late); good when a later trace took ``reaches``."""
    bound = Bound()
    hi = end * MINUTE_NS
    lo = min(firsts) * MINUTE_NS - REACH_GRACE_NS
    traces = journey_traces(names, query, lo, hi, bound)
    service, operation = bound.add(query.service, "String"), bound.add(query.operation, "String")
    reaches = bound.add(query.reaches, "String")
    counts: list[Counts] = []
    for first in firsts:
        since = bound.add(first * MINUTE_NS - REACH_GRACE_NS, "Int64")
        until = bound.add(hi - REACH_GRACE_NS, "Int64")
        rows = fetch(
            f"""WITH traces AS ({traces}),
befores AS (SELECT session_id, min(start_ns) AS at FROM traces
            WHERE service = {service} AND operation = {operation}
              AND start_ns >= {since} AND start_ns < {until} GROUP BY session_id)
SELECT count(), countIf(NOT reached) FROM (
    SELECT b.session_id, max(r.start_ns > b.at) AS reached
    FROM befores AS b
    LEFT JOIN (SELECT session_id, start_ns FROM traces WHERE operation = {reaches}) AS r
      ON r.session_id = b.session_id
    GROUP BY b.session_id)""",
            bound.params,
        )
        total, bad = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        counts.append(Counts(good=total - bad, total=total))
    return counts


def slo_counts(
    fetch: Fetch, t: Tables, query: IndicatorQuery, end_ns: int, windows_ns: Sequence[int]
) -> list[Counts]:
    """``Store.slo_counts``: good and total events of each window ending at ``end_ns``."""
    names = Names(t)
    end, firsts = _firsts(end_ns, windows_ns)
    if query.indicator is Indicator.JOURNEY:
        return _journey_counts(fetch, names, query, end, firsts)
    bound = Bound()
    if query.indicator is Indicator.EDGE:
        if query.callee is None:
            raise ValueError("an edge SLO needs a callee")
        rows_sql = _edge_rows(names, query, bound)
    else:
        rows_sql = _operation_rows(names, query, bound)
    counts = []
    for total, bad in _windowed(fetch, rows_sql, bound, end, firsts):
        total = max(total, 0)
        bad = min(max(bad, 0), total)
        counts.append(Counts(good=total - bad, total=total))
    return counts


def retry_counts(
    fetch: Fetch, t: Tables, caller: str, callee: str, end_ns: int, windows_ns: Sequence[int]
) -> list[RetryCounts]:
    """``Store.retry_counts``: calls from ``caller`` to ``callee`` and retries among them."""
    names = Names(t)
    end, firsts = _firsts(end_ns, windows_ns)
    bound = Bound()
    rows_sql = (
        f"SELECT minute, calls AS n, if(retried = 1, calls, 0) AS bad FROM {names.pairs}"
        f" WHERE caller = {bound.add(caller, 'String')} AND callee = {bound.add(callee, 'String')}"
    )
    sums = _windowed(fetch, rows_sql, bound, end, firsts)
    return [RetryCounts(retried=retried, calls=calls) for calls, retried in sums]


def slo_examples(
    fetch: Fetch, t: Tables, query: IndicatorQuery, window: TimeWindow, limit: int
) -> list[ExampleRow]:
    """``Store.slo_examples``: the latest failed (or the slowest, for latency) events'
    traces in ``window``, at most ``limit`` (capped at ``MAX_EXAMPLES``)."""
    limit = max(0, min(limit, MAX_EXAMPLES))
    if limit == 0:
        return []
    bound = Bound()
    latency = query.indicator is Indicator.LATENCY
    if latency or query.threshold_ns is not None:
        if query.threshold_ns is None:
            raise ValueError("a latency SLO needs a threshold")
        slow = f"duration_ns > {bound.add(query.threshold_ns, 'Int64')}"
        bad = slow if latency else f"(status = '{ERROR}' OR {slow})"
    else:
        bad = f"status = '{ERROR}'"
    order = "duration_ns DESC" if latency else "start_ns DESC"
    start, end = bound.add(window.start_ns, "Int64"), bound.add(window.end_ns, "Int64")
    where = f"start_ns >= {start} AND start_ns < {end} AND {bad}"
    if not query.include_synthetic:
        where += f" AND NOT {synthetic()}"
    if query.indicator is Indicator.EDGE:
        if query.callee is None:
            raise ValueError("an edge SLO needs a callee")
        callee, caller = bound.add(query.callee, "String"), bound.add(query.service, "String")
        low = bound.add(window.start_ns - PAIR_HORIZON_NS, "Int64")
        high = bound.add(window.end_ns + PAIR_HORIZON_NS, "Int64")
        # The callee's bad spans first (few), then their parents among the caller's spans.
        candidates = (
            f"SELECT trace_id, span_id, parent_span_id, start_ns, duration_ns, status"
            f" FROM {t.spans} WHERE service_name = {callee}"
            f" AND kind IN ('server', 'consumer') AND {where}"
        )
        source = f"""SELECT c.trace_id AS trace_id, c.start_ns AS start_ns,
       c.duration_ns AS duration_ns, c.status AS status
FROM ({candidates}) AS c
INNER JOIN (SELECT trace_id, span_id FROM {t.spans}
            WHERE service_name = {caller} AND start_ns >= {low} AND start_ns <= {high}
              AND trace_id IN (SELECT trace_id FROM ({candidates}))) AS p
  ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id"""
    else:
        where += f" AND service_name = {bound.add(query.service, 'String')}"
        if query.indicator is not Indicator.JOURNEY:
            where += f" AND {ENTRY}"
        if query.operation is not None:
            where += f" AND name = {bound.add(query.operation, 'String')}"
        source = f"SELECT trace_id, start_ns, duration_ns, status FROM {t.spans} WHERE {where}"
    rows = fetch(
        f"""SELECT trace_id, start_ns, duration_ns, status = '{ERROR}' FROM ({source})
ORDER BY {order}, trace_id LIMIT 1 BY trace_id LIMIT {bound.add(limit, "UInt32")}""",
        bound.params,
    )
    return [ExampleRow(str(r[0]), int(r[1]), int(r[2]), bool(r[3])) for r in rows]
