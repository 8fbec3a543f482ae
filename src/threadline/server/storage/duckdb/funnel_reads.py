"""A funnel's figures counted in SQL: journeys reaching each step, time between steps.

The same walk as ``analysis.funnel.progress`` over the traces ``journey_reads``
reads for a funnel (the chosen journeys' steps in [lo, hi + gap), fresh traces
merged), done as a greedy chain of aggregates rather than in Python:

- ``matched``: the steps read that are some funnel step, with one flag per funnel
  step (a trace may match several: a step in any service and one in a given
  service). Only these rows are carried on: the rest of a journey never moves it
  along a funnel.
- ``s0``: per session, the first trace (by start, then trace id) in the window that
  is step 0: the journeys entering the funnel.
- ``sk``: per session of ``s(k−1)``, the first trace after the one that reached
  step k−1 (the same order) that is step k. A journey reaching nothing more drops
  out of the chain, as ``progress`` stops walking.

Each link is a join of the matching rows with the sessions of the link before, and
a ``min`` of (start, trace id) per session: what reading every journey's traces in
order and walking them did, without sorting or sending them. The time to step k is
the gap between the starts of the two links, counted in ``sketch`` buckets.

The sample is the entering sessions ordered by DuckDB's ``hash`` of the session id
(then the id): a spread of the window's journeys, the same on every call. Their
traces (``funnel_journeys``) are read with the same chain: from the one that
entered the funnel to the one that completed it, or to the journey's end when it
stopped before, what the walk and the drop-off comparison use.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch
from threadline.server.journey_model import FunnelReach, JourneyTrace, journey_traces
from threadline.server.storage.duckdb.journey_reads import (
    JOURNEY_COLUMNS,
    MAX_FUNNEL_TRACES,
    Attribute,
    chosen,
    chosen_params,
)
from threadline.server.storage.duckdb.rollups import bucket_sql
from threadline.server.storage.duckdb.sql import Fetch

# What the chain reads of a step row (``chosen`` tests its filters where it reads):
# no list column is carried on.
_COLUMNS = "session_id, trace_id, start_ns, service, operation"


def _at(alias: str) -> str:
    """A step row's place in its session, as a struct: struct comparison orders by
    start, then trace id, the order ``progress`` walks."""
    return f"{{'s': {alias}.start_ns, 't': {alias}.trace_id}}"


def _match(step: StepMatch) -> tuple[str, list[object]]:
    if step.service is None:
        return "operation = ?", [step.operation]
    return "(operation = ? AND service = ?)", [step.operation, step.service]


def chain(window: TimeWindow, steps: Sequence[StepMatch]) -> tuple[str, list[object]]:
    """CTEs over ``chosen``: ``matched``, then ``s0`` ... ``s{n-1}``, each session's
    trace reaching each step (``at``: start and trace id) and the time from the step
    before (``gap``); and their parameters, which follow ``chosen``'s."""
    params: list[object] = []
    flags = []
    for k, step in enumerate(steps):
        test, values = _match(step)
        flags.append(f"{test} AS m{k}")
        params += values
    any_flag = " OR ".join(f"m{k}" for k in range(len(steps)))
    links = [
        f"""s0 AS MATERIALIZED (
    SELECT m.session_id, min({_at("m")}) AS at, NULL::BIGINT AS gap FROM matched AS m
    WHERE m.m0 AND m.start_ns >= ? AND m.start_ns < ? GROUP BY m.session_id)"""
    ]
    params += [window.start_ns, window.end_ns]
    for k in range(1, len(steps)):
        links.append(
            f"""s{k} AS MATERIALIZED (
    SELECT m.session_id, min({_at("m")}) AS at, min({_at("m")}).s - any_value(p.at.s) AS gap
    FROM matched AS m JOIN s{k - 1} AS p ON m.session_id = p.session_id
    WHERE m.m{k} AND {_at("m")} > p.at GROUP BY m.session_id)"""
        )
    chain = ",\n".join(links)
    return (
        f"""matched AS MATERIALIZED (
    SELECT * FROM (SELECT session_id, trace_id, start_ns, {", ".join(flags)} FROM chosen)
    WHERE {any_flag}),
{chain}""",
        params,
    )


def funnel_reach(
    fetch: Fetch,
    window: TimeWindow,
    steps: Sequence[StepMatch],
    service: str | None,
    attribute: Attribute | None,
    sample: int,
) -> FunnelReach:
    """Journeys reaching each step, the gap histograms and the sample, in one statement."""
    if not steps:
        return FunnelReach((), (), ())
    links, linked = chain(window, steps)
    params = [*chosen_params(window, service, attribute), *linked]
    counts = ["SELECT 0, NULL::INTEGER, count(*), NULL::VARCHAR FROM s0"] + [
        f"SELECT {k}, {bucket_sql('gap')} AS bucket, count(*), NULL FROM s{k} GROUP BY bucket"
        for k in range(1, len(steps))
    ]
    sql = f"""{chosen(service, attribute, _COLUMNS)},
{links}
{" UNION ALL ".join(counts)}
UNION ALL
SELECT -1, NULL, NULL, session_id FROM (
    SELECT session_id FROM s0 ORDER BY hash(session_id), session_id LIMIT ?)"""
    params.append(max(sample, 0))
    rows = fetch(sql, params)
    journeys = [0] * len(steps)
    gaps: list[dict[int, int]] = [{} for _ in steps]
    picked = []
    for k, bucket, count, session in rows:
        if k < 0:
            picked.append(str(session))
        elif k == 0:
            journeys[0] = int(count)
        else:
            journeys[k] += int(count)
            gaps[k][int(bucket)] = int(count)
    picked.sort()
    return FunnelReach(
        journeys=tuple(journeys),
        gaps=tuple(tuple(sorted(g.items())) for g in gaps),
        sample=tuple(picked),
    )


def funnel_journeys(
    fetch: Fetch,
    window: TimeWindow,
    steps: Sequence[StepMatch],
    service: str | None,
    attribute: Attribute | None,
    sessions: Sequence[str] | None,
) -> tuple[list[JourneyTrace], bool]:
    """The traces a funnel's walk reads of the journeys entering it in the window
    (``sessions``: only those), in session order: each journey's from the trace that
    entered it to the one that completed it, or to its end when it stopped before.
    The traces before the entry and after the last step change neither what the
    walk finds nor what happened before a drop-off, so they are never sent. The
    bool says ``MAX_FUNNEL_TRACES`` was reached: the answer is partial."""
    if not steps:
        return [], False
    links, linked = chain(window, steps)
    at = _at("c")
    rows = fetch(
        f"""{chosen(service, attribute, JOURNEY_COLUMNS, sessions=sessions is not None)},
{links}
SELECT c.* FROM chosen AS c JOIN s0 ON c.session_id = s0.session_id
LEFT JOIN s{len(steps) - 1} AS done ON c.session_id = done.session_id
WHERE {at} >= s0.at AND (done.at IS NULL OR {at} <= done.at)
ORDER BY c.session_id, c.start_ns, c.trace_id LIMIT {MAX_FUNNEL_TRACES + 1}""",
        [*chosen_params(window, service, attribute, sessions), *linked],
    )
    capped = len(rows) > MAX_FUNNEL_TRACES
    return journey_traces(rows[:MAX_FUNNEL_TRACES]), capped
