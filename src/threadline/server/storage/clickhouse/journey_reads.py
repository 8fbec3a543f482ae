"""Reads of the ClickHouse journey steps: the map of a window, the journeys behind a funnel.

Both read ``journey_steps`` (a narrow row per trace of a session, ``journey_schema``),
never spans, with the DuckDB store's rules (``duckdb/journey_reads.py``): a window's
journeys are the sessions with a step starting in it; their next steps are looked
for up to ``SESSION_GAP_NS`` past the window's end, after which a journey counts as
ended; synthetic traces and traces without a session make no step.

A trace's partial rows are merged first (grouped by trace id: reads never wait for
a merge), for the traces having a row that starts in ``[lo, hi + gap)``: the row
holding a trace's first start is among those, and the table's key is the trace id,
so the merge reads only their granules. Consecutive steps of a session are paired
by ``leadInFrame`` over the session's steps in start order, so the pairing does not
depend on arrival order. Latency percentiles are exact (``quantilesExactInclusive``,
interpolated as ``quantile_cont``); think time is a ``sketch`` histogram (within 2%).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.funnel import StepMatch, walked
from threadline.server.journey_model import (
    SESSION_GAP_NS,
    JourneyTrace,
    Step,
    StepStats,
    Transition,
    journey_traces,
)
from threadline.server.storage.clickhouse.journey_steps import steps_table
from threadline.server.storage.clickhouse.sql import Bound
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Traces read for a funnel's drop-off comparison at most, as the DuckDB store's (the
# traces of its sampled journeys, walked in Python): a sample whose journeys hold
# more is compared on the sessions read first, and says so. The funnel's counts are
# not bounded: ``funnel_reads`` counts them in SQL.
MAX_FUNNEL_TRACES: Final = 500_000

# On a cluster the steps' subquery (``trace_id IN (SELECT … FROM journey_steps)``)
# runs on each shard against its own rows: steps are sharded by trace id, so a
# trace's rows are all on the shard the subquery finds it on. Without this setting
# ClickHouse refuses an IN over a ``Distributed`` table inside a read of one.
SHARD_LOCAL_IN: Final = "\nSETTINGS distributed_product_mode = 'local'"

_THINK: Final = "greatest(next_start - end_ns, 0)"


def bucket_sql(duration: str) -> str:
    """``sketch.bucket_index`` in SQL: the same ``ceil(ln d / ln γ)`` in doubles."""
    return (
        f"if({duration} <= 0, {sketch.ZERO_BUCKET},"
        f" toInt64(ceil(log({duration}) / {sketch.LOG_GAMMA!r})))"
    )


_THINK_BUCKET: Final = bucket_sql(_THINK)


# A journey filter: an attribute (key, value) on the entry span of one of its steps
# in the window.
Attribute = tuple[str, str]


def chosen_steps(
    t: Tables,
    window: TimeWindow,
    service: str | None,
    attribute: Attribute | None,
    bound: Bound,
    sessions: Sequence[str] | None = None,
) -> str:
    """CTEs: ``merged``, the steps starting in ``[lo, hi + gap)``; ``chosen``, those of
    the sessions chosen: with ``service`` and ``attribute``, the sessions with a step
    in the window touching the service and whose entry span carries the attribute
    (both on the same step, as the DuckDB store's filter); with ``sessions``, only
    the steps of those sessions (a funnel's sample)."""
    steps = steps_table(t)
    lo = bound.add(window.start_ns, "Int64")
    hi = bound.add(window.end_ns, "Int64")
    reach = bound.add(window.end_ns + SESSION_GAP_NS, "Int64")
    chosen = "SELECT * FROM merged"
    tests = []
    if service is not None:
        tests.append(f"has(services, {bound.add(service, 'String')})")
    if attribute is not None:
        pair = f"{attribute[0]}\x1f{attribute[1]}"
        tests.append(f"has(attributes, {bound.add(pair, 'String')})")
    if tests:
        # A window over the sessions rather than ``session_id IN (SELECT … FROM
        # merged)``: ClickHouse evaluates a CTE at each use, so that would merge twice.
        touching = (
            f"max(start_ns >= {lo} AND start_ns < {hi}"
            f" AND {' AND '.join(tests)}) OVER (PARTITION BY session_id)"
        )
        chosen = (
            "SELECT * EXCEPT (touches) FROM"
            f" (SELECT *, {touching} AS touches FROM merged) WHERE touches"
        )
    listed = ""
    if sessions is not None:
        # A set built once (``IN``), where ``has`` would scan the list for every trace.
        named = bound.add(list(sessions), "Array(String)")
        listed = f" AND first_session IN (SELECT arrayJoin({named}))"
    # Aggregates get names of their own: ClickHouse would resolve ``min(start_ns) AS
    # start_ns`` inside its own argument.
    return f"""
WITH folded AS (
    SELECT trace_id, min(session_id) AS first_session, min(start_ns) AS first_start,
           max(end_ns) AS last_end, min(root) AS first_root, max(failed) AS any_failed,
           max(synthetic) AS any_synthetic,
           arraySort(groupUniqArrayArray(error_services)) AS failing,
           groupUniqArrayArray(services) AS touched, max(error_origin) AS origin
    FROM {steps}
    WHERE trace_id IN (SELECT trace_id FROM {steps} WHERE start_ns >= {lo} AND start_ns < {reach})
    GROUP BY trace_id
    HAVING first_session IS NOT NULL AND any_synthetic = 0
       AND first_start >= {lo} AND first_start < {reach}{listed}),
merged AS (
    SELECT assumeNotNull(first_session) AS session_id, trace_id, first_start AS start_ns,
           last_end AS end_ns, first_root.4 AS service, first_root.5 AS operation,
           any_failed = 1 AS failed, failing AS error_services, touched AS services,
           first_root.6 AS attributes, origin AS error_origin
    FROM folded),
chosen AS ({chosen})"""


def journey_map(
    fetch: Fetch,
    t: Tables,
    window: TimeWindow,
    service: str | None,
    attribute: Attribute | None = None,
) -> tuple[list[StepStats], list[Transition]]:
    """Every step taken in the window by the chosen journeys, and their transitions.

    One statement, one pass over the paired steps: grouping sets aggregate the steps
    and the transitions together.
    """
    bound = Bound()
    cte = chosen_steps(t, window, service, attribute, bound)
    lo = bound.add(window.start_ns, "Int64")
    hi = bound.add(window.end_ns, "Int64")
    rows = fetch(
        f"""{cte},
paired AS (
    SELECT session_id, start_ns, end_ns, service, operation, failed,
           leadInFrame(toNullable(start_ns), 1, NULL) OVER w AS next_start,
           leadInFrame(toNullable(service), 1, NULL) OVER w AS following_service,
           leadInFrame(toNullable(operation), 1, NULL) OVER w AS following_operation
    FROM chosen
    WINDOW w AS (PARTITION BY session_id ORDER BY start_ns, trace_id
                 ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)),
inside AS (
    SELECT *, next_start IS NOT NULL AND next_start - end_ns <= {SESSION_GAP_NS} AS goes_on,
           if(goes_on, following_service, NULL) AS next_service,
           if(goes_on, following_operation, NULL) AS next_operation
    FROM paired WHERE start_ns >= {lo} AND start_ns < {hi})
SELECT grouping(next_service) = 1 AS is_step, service, operation, next_service, next_operation,
       count(), uniqExact(session_id), countIf(failed),
       quantilesExactInclusive(0.5, 0.95)(end_ns - start_ns), countIf(NOT goes_on),
       sumMap([{_THINK_BUCKET}], [toUInt64(1)])
FROM inside
GROUP BY GROUPING SETS ((service, operation), (service, operation, next_service, next_operation))
HAVING is_step OR next_service IS NOT NULL{SHARD_LOCAL_IN}""",
        bound.params,
    )
    steps = [
        StepStats(
            step=Step(str(r[1]), str(r[2])),
            traces=int(r[5]),
            journeys=int(r[6]),
            errors=int(r[7]),
            p50_ns=float(r[8][0]),
            p95_ns=float(r[8][1]),
            ended=int(r[9]),
        )
        for r in rows
        if r[0]
    ]
    moves = [
        Transition(
            source=Step(str(r[1]), str(r[2])),
            target=Step(str(r[3]), str(r[4])),
            count=int(r[5]),
            journeys=int(r[6]),
            think=tuple(sorted((int(k), int(v)) for k, v in zip(*r[10], strict=True))),
        )
        for r in rows
        if not r[0]
    ]
    steps.sort(key=lambda s: (-s.traces, s.step))
    moves.sort(key=lambda m: (-m.count, m.source, m.target))
    return steps, moves


def journeys(
    fetch: Fetch,
    t: Tables,
    window: TimeWindow,
    service: str | None,
    funnel: Sequence[StepMatch] = (),
    attribute: Attribute | None = None,
    sessions: Sequence[str] | None = None,
) -> tuple[list[JourneyTrace], bool]:
    """The traces of the window's journeys (to the gap past its end), in session order.

    ``funnel`` keeps only journeys entering it inside the window (its first step; a
    ``StepMatch`` without a service matches the operation in any service), read from
    their first trace taking it and cut after the trace completing the funnel
    (``analysis.funnel.walked``, in Python: the cut needs the walk); ``sessions``,
    only those sessions' journeys. The bool says ``MAX_FUNNEL_TRACES`` was reached:
    the answer is partial. No pairing here: funnels walk each journey's steps in
    order themselves.
    """
    bound = Bound()
    cte = chosen_steps(t, window, service, attribute, bound, sessions)
    source = "chosen"
    if funnel:
        first = funnel[0]
        lo = bound.add(window.start_ns, "Int64")
        hi = bound.add(window.end_ns, "Int64")
        operation = bound.add(first.operation, "String")
        in_service = (
            "1" if first.service is None else f"service = {bound.add(first.service, 'String')}"
        )
        # Journeys taking the step in the window, from their first trace taking it, by
        # a window over the session (one evaluation of ``chosen``, where an IN
        # subquery would merge the steps twice).
        entry = f"start_ns >= {lo} AND start_ns < {hi} AND {in_service} AND operation = {operation}"
        source = (
            f"(SELECT *, countIf({entry}) OVER (PARTITION BY session_id) AS enters,"
            f" minIf(start_ns, {entry}) OVER (PARTITION BY session_id) AS entered"
            " FROM chosen) WHERE enters > 0 AND start_ns >= entered"
        )
    rows = fetch(
        f"""{cte}
SELECT session_id, trace_id, start_ns, end_ns, service, operation, failed, error_services,
       error_origin
FROM {source}
ORDER BY session_id, start_ns, trace_id LIMIT {MAX_FUNNEL_TRACES + 1}{SHARD_LOCAL_IN}""",
        bound.params,
    )
    capped = len(rows) > MAX_FUNNEL_TRACES
    traces = journey_traces(rows[:MAX_FUNNEL_TRACES])
    return (walked(traces, funnel, window) if funnel else traces), capped
