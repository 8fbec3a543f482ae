"""Reads of the journey steps: the map of a window, and the journeys behind a funnel.

Both read ``journey_steps`` (one narrow row per trace of a session), never spans.
Traces whose summary has rows not yet folded get their step from those rows,
merged here as ``summaries.fold`` would (at most the traces of the commits since
the last fold); when a probe finds none (``summaries.any_fresh``, as trace search
does), the steps are read as kept, which spares a map most of its time. A map reads
each step's next step from its row, linked at fold (``journey_links``); the sessions
of traces not folded yet are paired by sorting their steps. Either way the pairing
does not depend on arrival order.

The rows a window chooses (``chosen``) are shared with ``funnel_reads``, which
counts a funnel over them in SQL and reads its sample's journeys for the drop-off
comparison.

A window's journeys are the sessions with a step starting in it; their next steps
are looked for up to ``SESSION_GAP_NS`` past the window's end, after which a
journey counts as ended. Within those bounds every figure is exact but the latency
and think-time percentiles: latency is ``quantile_cont`` (exact), think time a
``sketch`` histogram (within 2%).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.journey_model import (
    SESSION_GAP_NS,
    JourneyTrace,
    Step,
    StepStats,
    Transition,
    journey_traces,
)
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.journey_links import GOES_ON, LINK_COLUMNS, LINK_TYPES, paired
from threadline.server.storage.duckdb.journey_steps import (
    ATTRIBUTES,
    COLUMNS,
    ORIGIN,
    STEPS,
    attribute_pair,
    attributed_rows,
    step_rows,
)
from threadline.server.storage.duckdb.sql import Fetch
from threadline.server.storage.duckdb.summaries import MERGED, SUMMARIES, any_fresh

# Traces read for a funnel's drop-off comparison at most (the traces of its sampled
# journeys, walked in Python; about 100 MB of values at the cap): a sample whose
# journeys hold more is compared on the sessions read first, and says so. The
# funnel's counts are not bounded: ``funnel_reads`` counts them in SQL.
MAX_FUNNEL_TRACES: Final = 500_000


# What the map reads of a step row: no lists, and the step's kept links (``journey_links``).
MAP_COLUMNS: Final = "session_id, trace_id, start_ns, end_ns, service, operation, failed, " + (
    ", ".join(LINK_COLUMNS)
)
# Also the columns of a ``JourneyTrace``, in order (``journey_traces``).
JOURNEY_COLUMNS: Final = (
    f"session_id, trace_id, start_ns, end_ns, service, operation, failed, error_services, {ORIGIN}"
)


# A journey filter: a service its steps touch, or an attribute (key, value) on the
# entry span of one of its steps in the window.
Attribute = tuple[str, str]


def chosen(
    service: str | None,
    attribute: Attribute | None,
    columns: str = COLUMNS,
    *,
    sessions: bool = False,
    tagged: bool = False,
    inlined: bool = False,
    fresh: bool = True,
) -> str:
    """CTEs ending in ``chosen``: the chosen journeys' steps in [lo, hi + gap), with
    ``columns`` (a filter needs none of its own). Parameters: ``chosen_params``.
    Without a filter every session read is kept: one with no step in the window adds
    no row to a map's ``inside`` (``_linked``), and funnels skip it. With
    ``attribute``, fresh traces get their attributes from their root spans (the
    traces since the last fold, found by trace id and start). ``sessions`` keeps only
    the sessions of a list given as a parameter (a funnel's sample). ``tagged``, with a
    filter, keeps every session read and leaves each row's verdict in a ``tagged``
    column: a funnel tests it on the sessions entering it only. The rows read are
    kept once for the statement's several reads of them, unless ``inlined``: a map
    reads them once but for the traces not folded yet, which it finds by trace id,
    and copying every row of the window costs it more than that second read.
    ``fresh`` False: no summary row was unfolded at a probe just before
    (``summaries.any_fresh``), so the steps are read as kept, without merging traces
    not folded yet (rows a commit appends after the probe are left out, as if read
    before it)."""
    tests = []
    if service is not None:
        tests.append("list_contains(services, ?)")
    # Not folded yet: no error origin (``summaries.fold`` finds it).
    fresh_rows = f"SELECT *, NULL::VARCHAR AS {ORIGIN} FROM ({step_rows('fresh')})"
    if attribute is not None:
        tests.append(f"list_contains({ATTRIBUTES}, ?)")
        fresh_rows = attributed_rows("fresh")
    # Not folded yet: not linked either (``journey_links``); the map pairs them.
    unlinked = ", ".join(f"NULL::{t} AS {c}" for c, t in zip(LINK_COLUMNS, LINK_TYPES, strict=True))
    fresh_rows = f"SELECT *, {unlinked} FROM ({fresh_rows})"
    # The sample's sessions are tested on the rows read, before anything is sorted.
    listed = " AND session_id IN (SELECT unnest(?::VARCHAR[]))" if sessions else ""
    # A filter is tested where the rows are read (``tagged``): the list columns it
    # reads are not carried on with every row.
    tag = f", {' AND '.join(tests)} AS tagged" if tests else ""
    picked = "SELECT * FROM raw"
    if tests and not tagged:
        picked = (
            "SELECT * EXCLUDE (tagged) FROM raw WHERE hash(session_id) IN ("
            "SELECT hash(session_id) FROM raw WHERE tagged AND start_ns >= ? AND start_ns < ?)"
        )
    if not fresh:
        return f"""
WITH raw AS {"NOT MATERIALIZED" if inlined else ""} (
    SELECT {columns}{tag} FROM {STEPS} WHERE start_ns >= ? AND start_ns < ?{listed}),
chosen AS ({picked})"""
    return f"""
WITH fresh_ids AS (SELECT DISTINCT trace_id FROM {SUMMARIES} WHERE fresh),
fresh AS (SELECT trace_id, {MERGED} FROM {SUMMARIES}
          WHERE trace_id IN (SELECT trace_id FROM fresh_ids) GROUP BY trace_id),
raw AS {"NOT MATERIALIZED" if inlined else ""} (
    SELECT {columns}{tag} FROM {STEPS}
    WHERE start_ns >= ? AND start_ns < ? AND trace_id NOT IN (SELECT trace_id FROM fresh_ids)
          {listed}
    UNION ALL
    SELECT {columns}{tag} FROM ({fresh_rows}) WHERE start_ns >= ? AND start_ns < ?{listed}),
chosen AS ({picked})"""


def chosen_params(
    window: TimeWindow,
    service: str | None,
    attribute: Attribute | None,
    sessions: Sequence[str] | None = None,
    *,
    tagged: bool = False,
    fresh: bool = True,
) -> list[object]:
    """The parameters of ``chosen`` (``sessions`` given when it was made with them,
    ``tagged`` and ``fresh`` as it was made)."""
    lo, hi = window.start_ns, window.end_ns
    reach = hi + SESSION_GAP_NS
    tests: list[object] = [] if service is None else [service]
    if attribute is not None:
        tests.append(attribute_pair(*attribute))
    picked: list[object] = [lo, hi] if tests and not tagged else []
    listed: list[object] = [] if sessions is None else [list(sessions)]
    unfolded = [*tests, lo, reach, *listed] if fresh else []
    return [*tests, lo, reach, *listed, *unfolded, *picked]


def _linked(service: str | None, attribute: Attribute | None, *, fresh: bool) -> str:
    """CTEs ending in ``inside``: the chosen journeys' steps in the window, each with
    its next step (``next_*``, NULL for none), whether the journey goes on after it
    (``goes_on``) and whether it is the journey's first step of its kind in the window
    (``first_step``), and, of those that go on, first to make its move
    (``first_move``), read from the steps' kept links (``journey_links``) rather than
    found by sorting every step of the window by session.

    The sessions of traces not folded yet (``stale``) are paired by sorting their
    steps (``journey_links.paired``): those traces have no step row, and a refolded
    one may have left its old session, whose links still point at it. Their old rows
    are looked for by trace id among the steps read (a step before the window or at
    the reach is no step's next).

    A filter chooses the journeys last: every session read is paired alike (a session's
    links do not depend on the others), and ``inside`` keeps the steps of the sessions
    with a step in the window that passes the filter (``tagged``), found once, rather
    than the window's rows being copied with the chosen sessions' first.

    ``fresh`` False: no trace was unfolded at the probe (``chosen``), so every step is
    linked and nothing is paired by sorting. Parameters: ``_linked_params``."""
    picked = (
        " AND hash(session_id) IN (SELECT DISTINCT hash(session_id) FROM chosen"
        " WHERE tagged AND start_ns >= ? AND start_ns < ?)"
        if _filtered(service, attribute)
        else ""
    )
    rows = chosen(service, attribute, MAP_COLUMNS, tagged=True, inlined=True, fresh=fresh)
    steps = "steps AS (SELECT * FROM chosen)"
    if fresh:
        unlinked = ", ".join(LINK_COLUMNS)
        in_stale = "WHERE session_id IN (SELECT session_id FROM stale)"
        steps = f"""stale AS (
    SELECT session_id FROM chosen WHERE trace_id IN (SELECT trace_id FROM fresh_ids)
    UNION
    SELECT session_id FROM {STEPS}
    WHERE trace_id IN (SELECT trace_id FROM fresh_ids) AND start_ns >= ? AND start_ns < ?),
steps AS (
    SELECT * FROM chosen WHERE session_id NOT IN (SELECT session_id FROM stale)
    UNION ALL BY NAME
    SELECT * FROM ({paired(f"(SELECT * EXCLUDE ({unlinked}) FROM chosen {in_stale})")}))"""
    return f"""{rows},
{steps},
inside AS MATERIALIZED (
    SELECT *, next_start IS NOT NULL AND next_start < ?
              AND {GOES_ON} AS goes_on,
           hash(service, operation) AS step_key, hash(next_service, next_operation) AS next_key,
           coalesce(prev_step_start < ?, true) AS first_step,
           coalesce(prev_move_start < ?, true) AS first_move
    FROM steps WHERE start_ns >= ? AND start_ns < ?{picked})"""


def _filtered(service: str | None, attribute: Attribute | None) -> bool:
    """Whether the map chooses journeys (``_linked`` then tests the ``tagged`` rows)."""
    return service is not None or attribute is not None


def _linked_params(
    window: TimeWindow, service: str | None, attribute: Attribute | None, *, fresh: bool
) -> list[object]:
    lo, hi = window.start_ns, window.end_ns
    reach = hi + SESSION_GAP_NS
    picked = [lo, hi] if _filtered(service, attribute) else []
    return [
        *chosen_params(window, service, attribute, tagged=True, fresh=fresh),
        *((lo, reach) if fresh else ()),  # stale
        reach,  # goes_on
        *(lo, lo),  # first_step, first_move
        *(lo, hi),  # inside
        *picked,
    ]


def journey_map(
    fetch: Fetch, window: TimeWindow, service: str | None, attribute: Attribute | None = None
) -> tuple[list[StepStats], list[Transition]]:
    """Every step taken in the window by the chosen journeys, and their transitions.

    One statement: the steps are read once (``inside`` materialized) and both lists
    aggregated from them; think times are counted per ``sketch`` bucket (a group by,
    cheaper than a ``histogram`` aggregate's map per group). The journeys taking a
    step (or making a move) are counted on their first such step in the window
    (``first_step``, ``first_move``), not as distinct sessions. Steps and transitions
    are grouped by 64-bit hashes of their strings, a third of the time of grouping by
    the strings: two of a store's few thousand steps sharing a hash is a chance of
    about one in 10^12. A filter picks its journeys by a hash of the session id (two
    of a window's sessions sharing one: about one in 10^10).
    """
    think = bucket_sql("greatest(next_start - end_ns, 0)")
    fresh = any_fresh(fetch)
    rows = fetch(
        f"""{_linked(service, attribute, fresh=fresh)}
SELECT 0, any_value(service), any_value(operation), NULL, NULL, NULL, count(*),
       count(*) FILTER (WHERE first_step), count(*) FILTER (WHERE failed),
       quantile_cont(end_ns - start_ns, [0.5, 0.95]), count(*) FILTER (WHERE NOT goes_on),
       NULL, NULL
FROM inside GROUP BY step_key
UNION ALL
SELECT 1, any_value(service), any_value(operation), any_value(next_service),
       any_value(next_operation), NULL, count(*), count(*) FILTER (WHERE first_move), NULL,
       NULL, NULL, step_key, next_key
FROM inside WHERE goes_on GROUP BY step_key, next_key
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, {think} AS bucket, count(*), NULL, NULL, NULL, NULL,
       step_key, next_key
FROM inside WHERE goes_on GROUP BY step_key, next_key, bucket""",
        _linked_params(window, service, attribute, fresh=fresh),
    )
    steps = [
        StepStats(
            step=Step(str(r[1]), str(r[2])),
            traces=int(r[6]),
            journeys=int(r[7]),
            errors=int(r[8]),
            p50_ns=float(r[9][0]),
            p95_ns=float(r[9][1]),
            ended=int(r[10]),
        )
        for r in rows
        if r[0] == 0
    ]
    # Think-time buckets by the move's keys: their rows carry no names (the move's have
    # them), which would be read for every step that goes on.
    think_times: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for r in rows:
        if r[0] == 2:
            think_times.setdefault((r[11], r[12]), []).append((int(r[5]), int(r[6])))
    moves = []
    for r in rows:
        if r[0] == 1:
            source, target = Step(str(r[1]), str(r[2])), Step(str(r[3]), str(r[4]))
            moves.append(
                Transition(
                    source=source,
                    target=target,
                    count=int(r[6]),
                    journeys=int(r[7]),
                    think=tuple(sorted(think_times.get((r[11], r[12]), []))),
                )
            )
    steps.sort(key=lambda s: (-s.traces, s.step))
    moves.sort(key=lambda t: (-t.count, t.source, t.target))
    return steps, moves


def journeys(
    fetch: Fetch,
    window: TimeWindow,
    service: str | None,
    attribute: Attribute | None = None,
    sessions: Sequence[str] | None = None,
) -> tuple[list[JourneyTrace], bool]:
    """The traces of the window's journeys (to the gap past its end), in session order.

    ``sessions`` keeps only those sessions' journeys. The bool says
    ``MAX_FUNNEL_TRACES`` was reached: the answer is partial. A funnel's journeys are
    ``funnel_reads.funnel_journeys``.
    """
    fresh = any_fresh(fetch)
    listed = sessions is not None
    rows = fetch(
        f"""{chosen(service, attribute, JOURNEY_COLUMNS, sessions=listed, fresh=fresh)}
SELECT {JOURNEY_COLUMNS} FROM chosen
ORDER BY session_id, start_ns, trace_id LIMIT {MAX_FUNNEL_TRACES + 1}""",
        chosen_params(window, service, attribute, sessions, fresh=fresh),
    )
    capped = len(rows) > MAX_FUNNEL_TRACES
    return journey_traces(rows[:MAX_FUNNEL_TRACES]), capped
