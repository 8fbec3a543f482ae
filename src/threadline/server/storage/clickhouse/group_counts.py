"""``Store.trace_groups`` on ClickHouse: what the sampled traces of each group hold.

``groups`` labels the target's requests from the rollups and draws the bounded
sample from slices of the window, ``time_slices.spare`` traces more than needed: a
baseline trace may hold, outside the slices, a target request that meets the focus
condition (a failed retry a minute later). Such *misfits* are looked for among the
spans of the drawn baseline and left out, each group keeping its first ``sample``
traces but them (drawn again with more when they outnumber the spares). This module
then counts, over every span of the sampled traces (read where ``trace_id_ts`` says
they start, within ``PAIR_HORIZON_NS`` of the window, the trace ids passed as a set),
the operations (traces holding each, exact self time and its squares per trace, error
origins) and the attribute values, as the DuckDB store's ``groups`` does.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import (
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.analysis import time_slices
from threadline.server.storage.clickhouse.groups import (
    Labels,
    labels,
    sample_traces,
    target_spans,
)
from threadline.server.storage.clickhouse.rollup_tables import ERROR, PAIR_HORIZON_NS, USER_TRAFFIC
from threadline.server.storage.clickhouse.sql import Bound, checked_limit
from threadline.server.storage.clickhouse.tables import Fetch, Tables
from threadline.server.storage.clickhouse.traces import get_traces, span_ranges, starts_in
from threadline.server.storage.group_rows import attributes_from_rows, operations_from_rows

# Every span of the sampled traces but the SDK's own reports (in no fleet view);
# ``{ids}`` and ``{focus}`` are the sample's ids and its focus ids, ``{starts}`` where
# their spans start (``traces.starts_in``).
_MEMBERS: Final = """SELECT trace_id, span_id, coalesce(parent_span_id, '') AS parent_id,
       service_name, name, start_ns, end_ns, status, attributes, resource,
       trace_id IN {{focus:Array(String)}} AS focus
FROM {spans}
WHERE trace_id IN {{ids:Array(String)}} AND {starts} AND {user_traffic}"""


class _Draw(NamedTuple):
    """A draw of the sample: its (trace, focus) pairs in hash order, where their spans
    start (``starts_in``: the condition and its parameters) and the baseline's misfits."""

    traces: list[tuple[str, bool]]
    starts: str
    params: dict[str, object]
    misfits: set[str]


# The drawn baseline traces holding a target request in the window that meets the focus
# condition, found among their spans (``{starts}``).
_MISFITS: Final = """SELECT DISTINCT trace_id FROM {spans}
WHERE trace_id IN {{baseline:Array(String)}} AND {starts} AND {requests} AND ({focus})"""

# Self time: each child adds the part of its (clipped) interval beyond the latest
# end seen so far among its earlier siblings — the union of the children's intervals.
_OPERATIONS: Final = f"""WITH member AS ({{members}}),
child AS (
    SELECT c.trace_id AS trace_id, c.parent_id AS parent_id, c.status = '{ERROR}' AS failed,
           greatest(c.start_ns, p.start_ns) AS clipped_start,
           least(c.end_ns, p.end_ns) AS clipped_end
    FROM member AS c INNER JOIN member AS p
      ON c.trace_id = p.trace_id AND c.parent_id = p.span_id
),
ordered AS (
    SELECT *, max(toNullable(clipped_end)) OVER (
        PARTITION BY trace_id, parent_id ORDER BY clipped_start, clipped_end
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered_until
    FROM child
),
covered AS (
    SELECT trace_id, parent_id,
           sum(greatest(0, clipped_end - greatest(clipped_start,
                                                  coalesce(covered_until, clipped_start))))
               AS covered_ns,
           max(failed) AS child_failed
    FROM ordered GROUP BY trace_id, parent_id
),
per_trace AS (
    SELECT m.trace_id, m.focus AS focus, m.service_name AS service_name, m.name AS name,
           sum(greatest(0, m.end_ns - m.start_ns - cv.covered_ns)) AS self_ns,
           max(m.status = '{ERROR}' AND cv.child_failed = 0) AS origin
    FROM member AS m LEFT JOIN covered AS cv
      ON cv.trace_id = m.trace_id AND cv.parent_id = m.span_id
    GROUP BY m.trace_id, m.focus, m.service_name, m.name
)
SELECT service_name, name, countIf(focus), countIf(NOT focus),
       sumIf(self_ns, focus), sumIf(self_ns, NOT focus),
       countIf(focus AND origin), countIf(NOT focus AND origin),
       sumIf(toInt128(self_ns) * self_ns, focus), sumIf(toInt128(self_ns) * self_ns, NOT focus)
FROM per_trace
GROUP BY service_name, name
ORDER BY service_name, name"""

# Attribute values as DuckDB's ``json_extract_string`` gives them: a JSON string
# unquoted, anything else as its JSON text; ``null`` is no value.
_ATTRIBUTES: Final = """WITH pair AS (
    SELECT DISTINCT trace_id, focus, kv.1 AS key,
           if(startsWith(kv.2, '"'), JSONExtractString(kv.2), kv.2) AS value
    FROM ({members})
    ARRAY JOIN arrayConcat(arrayZip(mapKeys(attributes), mapValues(attributes)),
                           arrayZip(mapKeys(resource), mapValues(resource))) AS kv
    WHERE kv.2 != 'null'
),
key_stats AS (
    SELECT key, uniqExact(value) AS key_values, uniqExact(trace_id) AS key_traces
    FROM pair GROUP BY key
)
SELECT pair.key, pair.value, countIf(pair.focus) AS focus_traces, countIf(NOT pair.focus),
       any(key_stats.key_values), any(key_stats.key_traces)
FROM pair INNER JOIN key_stats ON pair.key = key_stats.key
GROUP BY pair.key, pair.value
HAVING focus_traces >= {{min_support:UInt64}}
ORDER BY focus_traces DESC, pair.key, pair.value
LIMIT {{limit:UInt64}}"""


def trace_groups(
    fetch: Fetch,
    t: Tables,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    percentile: float,
    min_support: int,
    max_attributes: int,
    examples: int,
    sample: int,
    sample_ids: int,
) -> TraceGroups:
    """``Store.trace_groups``: labels from the rollups, counts over a bounded sample."""
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    checked_limit(sample, "sample")
    checked_limit(max_attributes, "max_attributes")
    bound = Bound()
    found = labels(fetch, t, target, split, window, bound, percentile=percentile, examples=examples)
    # Read where the traces' spans start, within the horizon around the window.
    horizon = (found.window.start_ns - PAIR_HORIZON_NS, found.window.end_ns + PAIR_HORIZON_NS)

    def draw(wanted: int) -> tuple[_Draw, int, int]:
        drawn = sample_traces(fetch, t, target, bound, found, wanted)
        every_id = [trace for trace, _ in drawn]
        ranges = time_slices.within(span_ranges(fetch, t, every_id), horizon) if drawn else []
        starts, params = starts_in(ranges)
        misfits = _misfits(fetch, t, target, bound, found, drawn, (starts, params))
        baseline = sum(1 for _, focus in drawn if not focus)
        return _Draw(drawn, starts, params, misfits), baseline, len(misfits)

    # The draw takes spares for the misfits, and draws again with more when they fall short.
    drawn, starts, params, misfits = time_slices.refilled(sample, time_slices.spare(sample), draw)
    sampled = [drawn[place] for place in time_slices.kept(drawn, misfits, sample)]
    ids = [trace for trace, _ in sampled]
    focus_ids = [trace for trace, focus in sampled if focus]
    params |= {"ids": ids, "focus": focus_ids}
    members = _MEMBERS.format(spans=t.spans, starts=starts, user_traffic=USER_TRAFFIC)
    operation_rows = fetch(_OPERATIONS.format(members=members), params) if ids else []
    attribute_rows = (
        fetch(
            _ATTRIBUTES.format(members=members),
            {**params, "min_support": min_support, "limit": max_attributes},
        )
        if ids
        else []
    )
    baseline_ids = [trace for trace, focus in sampled if not focus]
    whole = [*focus_ids[: max(sample_ids, 0)], *baseline_ids[: max(sample_ids, 0)]]
    # The path traces' spans: a read of their own here (ClickHouse reads them by their
    # time-range lookup), as ``Store.get_traces`` gives them but the SDK's reports.
    sample_spans = [span for span in get_traces(fetch, t, whole) if span.name != SDK_STATS_SPAN]
    return TraceGroups(
        target=target,
        split=split,
        window=window,
        threshold_ns=found.threshold_ns,
        focus_traces=found.focus_requests,
        baseline_traces=found.baseline_requests,
        focus_sample=len(focus_ids),
        baseline_sample=len(baseline_ids),
        operations=operations_from_rows(operation_rows),
        attributes=attributes_from_rows(attribute_rows),
        examples=found.examples,
        focus_ids=tuple(focus_ids[: max(sample_ids, 0)]),
        baseline_ids=tuple(baseline_ids[: max(sample_ids, 0)]),
        sample_spans=tuple(
            sorted(sample_spans, key=lambda span: (span.trace_id, span.start_ns, span.span_id))
        ),
    )


def _misfits(
    fetch: Fetch,
    t: Tables,
    target: Target,
    bound: Bound,
    found: Labels,
    drawn: list[tuple[str, bool]],
    starts: tuple[str, dict[str, object]],
) -> set[str]:
    """The drawn baseline traces that hold a focus request of the target in the window."""
    baseline = [trace for trace, focus in drawn if not focus]
    if not baseline:
        return set()
    b = Bound(dict(bound.params))
    requests = target_spans(target, found.window, b)
    statement = _MISFITS.format(
        spans=t.spans, starts=starts[0], requests=requests, focus=found.focus
    )
    rows = fetch(statement, {**b.params, **starts[1], "baseline": baseline})
    return {str(row[0]) for row in rows}
