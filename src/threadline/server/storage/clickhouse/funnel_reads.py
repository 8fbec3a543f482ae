"""A funnel's figures counted in ClickHouse: journeys reaching each step, time between.

The same walk as ``analysis.funnel.progress`` (and the DuckDB store's
``duckdb/funnel_reads.py``) over the steps ``journey_reads`` reads for a funnel
(``chosen_steps``: the chosen journeys' steps in [lo, hi + gap), partial rows
merged). ClickHouse evaluates a CTE at each use, so rather than a chain of CTEs
(each link reading the one before: the steps merged once per funnel step) the walk
is one pass per session:

- the session's steps that are some funnel step, as (start, trace id, one flag per
  funnel step) tuples sorted: the order ``progress`` walks;
- ``i0``, the first of them in the window that is step 0 (0: the journey does not
  enter); ``ik``, the first after ``i(k−1)`` that is step k (``arrayFirstIndex``
  over positions), 0 once a step is not reached;
- one aggregate over the sessions: journeys entering, a ``sketch`` histogram of the
  gaps between the starts of consecutive reached steps, and the sample: the
  entering sessions with the smallest ``cityHash64`` of their id (then the id),
  the same on every call.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch
from threadline.server.journey_model import FunnelReach
from threadline.server.storage.clickhouse.journey_reads import (
    SHARD_LOCAL_IN,
    Attribute,
    bucket_sql,
    chosen_steps,
)
from threadline.server.storage.clickhouse.sql import Bound
from threadline.server.storage.clickhouse.tables import Fetch, Tables


def _match(step: StepMatch, bound: Bound) -> str:
    operation = f"operation = {bound.add(step.operation, 'String')}"
    if step.service is None:
        return operation
    return f"({operation} AND service = {bound.add(step.service, 'String')})"


def funnel_reach(
    fetch: Fetch,
    t: Tables,
    window: TimeWindow,
    steps: Sequence[StepMatch],
    service: str | None,
    attribute: Attribute | None,
    sample: int,
) -> FunnelReach:
    """Journeys reaching each step, the gap histograms and the sample, in one statement."""
    if not steps:
        return FunnelReach((), (), ())
    bound = Bound()
    cte = chosen_steps(t, window, service, attribute, bound)
    lo = bound.add(window.start_ns, "Int64")
    hi = bound.add(window.end_ns, "Int64")
    flags = ", ".join(f"{_match(step, bound)} AS m{k}" for k, step in enumerate(steps))
    columns = ", ".join(f"m{k}" for k in range(len(steps)))
    any_flag = " OR ".join(f"m{k}" for k in range(len(steps)))
    # Tuple element 3 + k is the flag of step k.
    positions = [f"arrayFirstIndex(x -> x.3 AND x.1 >= {lo} AND x.1 < {hi}, walk) AS i0"]
    gaps = []
    for k in range(1, len(steps)):
        positions.append(
            f"if(i{k - 1} = 0, 0, arrayFirstIndex((x, i) -> i > i{k - 1} AND x.{3 + k},"
            f" walk, arrayEnumerate(walk))) AS i{k}"
        )
        gap = f"walk[i{k}].1 - walk[i{k - 1}].1"
        gaps.append(f"sumMapIf([{bucket_sql(gap)}], [toUInt64(1)], i{k} > 0)")
    histograms = "".join(f", {g}" for g in gaps)
    # The aggregate's size is a parameter of its own, not a bound value, and at least 1.
    keep = max(int(sample), 1)
    rows = fetch(
        f"""{cte},
matched AS (SELECT session_id, start_ns, trace_id, {flags} FROM chosen WHERE {any_flag}),
walks AS (
    SELECT session_id,
           arraySort(groupArray(tuple(start_ns, trace_id, {columns}))) AS walk
    FROM matched GROUP BY session_id),
reached AS (SELECT session_id, walk, {", ".join(positions)} FROM walks)
SELECT countIf(i0 > 0),
       groupArraySortedIf({keep})(tuple(cityHash64(session_id), session_id), i0 > 0){histograms}
FROM reached{SHARD_LOCAL_IN}""",
        bound.params,
    )
    entered, picked, *maps = rows[0]
    journeys = [int(entered)]
    histograms_found: list[tuple[tuple[int, int], ...]] = [()]
    for keys, counts in maps:
        pairs = tuple(sorted((int(b), int(c)) for b, c in zip(keys, counts, strict=True) if c))
        histograms_found.append(pairs)
        journeys.append(sum(c for _, c in pairs))
    return FunnelReach(
        journeys=tuple(journeys),
        gaps=tuple(histograms_found),
        sample=tuple(sorted(str(p[1]) for p in picked[: max(sample, 0)])),
    )
