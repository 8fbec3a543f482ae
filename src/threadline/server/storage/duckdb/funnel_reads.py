"""A funnel's figures counted in SQL: journeys reaching each step, time between steps.

The same walk as ``analysis.funnel.progress`` over the traces ``journey_reads``
reads for a funnel (the chosen journeys' steps in [lo, hi + gap), fresh traces
merged), done as a greedy chain of aggregates rather than in Python:

- ``matched``: the steps read that are some funnel step, with one flag per funnel
  step (a trace may match several: a step in any service and one in a given
  service). Only these rows are carried on: the rest of a journey never moves it
  along a funnel. With a journey filter, the rows passing it in the window are kept
  too, and the sessions they belong to (``chosen_sessions``) are the ones that may
  enter: the filter is tested on the entering sessions, not on every row.
- ``s0``: per session, the first trace (by start, then trace id) in the window that
  is step 0: the journeys entering the funnel.
- ``s1`` ... ``s{n-1}``: for step k, per session of ``s(k−1)``, the first trace
  after the one that reached step k−1 (the same order) that is step k. A journey
  reaching nothing more drops out of the chain, as ``progress`` stops walking.

Each link is a join of the matching rows with the sessions of the link before, and
a ``min`` of (start, trace id) per session: what reading every journey's traces in
order and walking them did, without sorting or sending them. Sessions are joined
and grouped by a 64-bit hash of their id, as the map groups them (``journey_reads``:
two of a window's sessions sharing one is a chance of about one in 10^10). The time
to step k is the gap between the starts of the two links, counted in ``sketch``
buckets.

The sample is the entering sessions ordered by that hash (then the id): a spread of
the window's journeys, the same on every call. Their traces (``funnel_journeys``)
are read with the same chain: from the one that entered the funnel to the one that
completed it, or to the journey's end when it stopped before, the traces reaching a
step and those that met an error: what the walk and the drop-off comparison use.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch
from threadline.server.journey_model import FunnelReach, JourneyTrace, journey_traces
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.journey_reads import (
    JOURNEY_COLUMNS,
    MAX_FUNNEL_TRACES,
    Attribute,
    chosen,
    chosen_params,
)
from threadline.server.storage.duckdb.journey_steps import ORIGIN
from threadline.server.storage.duckdb.sql import Fetch
from threadline.server.storage.duckdb.summaries import any_fresh

# What the chain reads of a step row (``chosen`` tests its filters where it reads):
# no list column is carried on.
_COLUMNS = "session_id, trace_id, start_ns, service, operation"
# A trace's columns of a step row (``chosen`` may add its ``tagged``).
_JOURNEY_ROW = ", ".join(f"c.{column}" for column in JOURNEY_COLUMNS.split(", "))


def _at(alias: str) -> str:
    """A step row's place in its session, as a struct: struct comparison orders by
    start, then trace id, the order ``progress`` walks."""
    return f"{{'s': {alias}.start_ns, 't': {alias}.trace_id}}"


def _match(step: StepMatch) -> tuple[str, list[object]]:
    if step.service is None:
        return "operation = ?", [step.operation]
    return "(operation = ? AND service = ?)", [step.operation, step.service]


def chain(
    window: TimeWindow, steps: Sequence[StepMatch], filtered: bool
) -> tuple[str, list[object]]:
    """CTEs over ``chosen`` (made ``tagged``): ``matched``, ``chosen_sessions``, then
    ``s0`` ... ``s{n-1}``, each session's trace reaching each step (``at``: start and
    trace id) and the time from the step before (``gap``); and their parameters,
    which follow ``chosen``'s.

    Sessions are keyed by a 64-bit hash of their id (``sk``), as the map groups them.
    The journey filter is tested on the sessions entering (``s0``), whose links the
    chain follows, rather than on every row read: a session is chosen when one of its
    rows in the window passes it (``chosen_sessions``)."""
    lo, hi = window.start_ns, window.end_ns
    params: list[object] = []
    flags = []
    for k, step in enumerate(steps):
        test, values = _match(step)
        flags.append(f"{test} AS m{k}")
        params += values
    any_flag = " OR ".join(f"m{k}" for k in range(len(steps)))
    picks, chosen_sessions, entering = ", FALSE AS picks", "", ""
    if filtered:
        picks = ",\n               tagged AND start_ns >= ? AND start_ns < ? AS picks"
        chosen_sessions = "\nchosen_sessions AS (SELECT DISTINCT sk FROM matched WHERE picks),"
        entering = "\n          AND m.sk IN (SELECT sk FROM chosen_sessions)"
        params += [lo, hi]
    params += [lo, hi]
    links = [
        f"""s0 AS MATERIALIZED (
    SELECT m.sk, any_value(m.session_id) AS session_id, min({_at("m")}) AS at,
           NULL::BIGINT AS gap FROM matched AS m
    WHERE m.m0 AND m.start_ns >= ? AND m.start_ns < ?{entering} GROUP BY m.sk)"""
    ]
    for k in range(1, len(steps)):
        links.append(
            f"""s{k} AS MATERIALIZED (
    SELECT m.sk, min({_at("m")}) AS at, min({_at("m")}).s - any_value(p.at.s) AS gap
    FROM matched AS m JOIN s{k - 1} AS p ON m.sk = p.sk
    WHERE m.m{k} AND {_at("m")} > p.at GROUP BY m.sk)"""
        )
    chain = ",\n".join(links)
    return (
        f"""matched AS MATERIALIZED (
    SELECT * FROM (
        SELECT session_id, hash(session_id) AS sk, trace_id, start_ns, {", ".join(flags)}{picks}
        FROM chosen)
    WHERE {any_flag} OR picks),{chosen_sessions}
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
    links, linked = chain(window, steps, service is not None or attribute is not None)
    fresh = any_fresh(fetch)
    params = [*chosen_params(window, service, attribute, tagged=True, fresh=fresh), *linked]
    counts = ["SELECT 0, NULL::INTEGER, count(*), NULL::VARCHAR FROM s0"] + [
        f"SELECT {k}, {bucket_sql('gap')} AS bucket, count(*), NULL FROM s{k} GROUP BY bucket"
        for k in range(1, len(steps))
    ]
    sql = f"""{chosen(service, attribute, _COLUMNS, tagged=True, fresh=fresh)},
{links}
{" UNION ALL ".join(counts)}
UNION ALL
SELECT -1, NULL, NULL, session_id FROM (
    SELECT session_id FROM s0 ORDER BY sk, session_id LIMIT ?)"""
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
    (``sessions``: only those), in session order: of each journey, from the trace
    that entered it to the one that completed it, or to its end when it stopped
    before, the traces reaching a step and those that met an error
    (``analysis.funnel.walked``). The rest change neither what the walk finds nor
    what a journey met before a drop-off, so they are never sent. The bool says
    ``MAX_FUNNEL_TRACES`` was reached: the answer is partial."""
    if not steps:
        return [], False
    links, linked = chain(window, steps, service is not None or attribute is not None)
    at = _at("c")
    last = f"s{len(steps) - 1}"
    later = "".join(f"\nLEFT JOIN s{k} ON s0.sk = s{k}.sk" for k in range(1, len(steps)))
    reaching = ", ".join(f"s{k}.at.t" for k in range(len(steps)))
    listed = sessions is not None
    fresh = any_fresh(fetch)
    read = chosen(service, attribute, JOURNEY_COLUMNS, sessions=listed, tagged=True, fresh=fresh)
    rows = fetch(
        f"""{read},
{links}
SELECT {_JOURNEY_ROW} FROM chosen AS c JOIN s0 ON hash(c.session_id) = s0.sk{later}
WHERE {at} >= s0.at AND ({last}.at IS NULL OR {at} <= {last}.at)
      AND (c.trace_id IN ({reaching}) OR c.failed OR len(c.error_services) > 0
           OR c.{ORIGIN} IS NOT NULL)
ORDER BY c.session_id, c.start_ns, c.trace_id LIMIT {MAX_FUNNEL_TRACES + 1}""",
        [*chosen_params(window, service, attribute, sessions, tagged=True, fresh=fresh), *linked],
    )
    capped = len(rows) > MAX_FUNNEL_TRACES
    return journey_traces(rows[:MAX_FUNNEL_TRACES]), capped
