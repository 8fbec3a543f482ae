"""Trace groups in DuckDB: a target's traces split in two and what each group holds.

The target's entry spans in the window label their traces: *focus* when one of
them is at or above the percentile threshold (or failed), *baseline* otherwise.
Over every span of those traces the store then counts, per group:

- per (service, operation): traces holding it, total self time, traces where it
  is an error origin. Self time is exact, as ``analysis.tree`` computes it: a
  window function walks each parent's children by start time, and a child adds
  only the part of its (clipped) interval beyond the latest end seen so far —
  the length of the union of the children's intervals;
- per attribute ``key=value`` (span and resource attributes, via ``json_each``):
  the traces carrying it, and per key the distinct values and the traces carrying
  the key (so analysis can tell an identifier from a property). Values on fewer
  than ``min_support`` focus traces are dropped in SQL: identifiers (message ids,
  order numbers) would otherwise return one row per trace and explain nothing.

Both counts run on a sample of at most ``sample`` traces per group, the same one
every time (ordered by a hash of the trace id): shares and means need a few
thousand traces to be precise to a percent or so, and the cost then stays flat as
the store grows instead of reading every span of every trace in the window.

The ranking itself is pure analysis (``analysis/tail_latency.py``).
"""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    ERROR,
    NO_PARENT,
    Conditions,
    Fetch,
    checked_limit,
    in_window,
)

# Per-span self time and "error origin" (an error span with no failing child),
# for every span of the labelled traces; ``labelled`` is defined before it.
_OPERATIONS: Final = f"""
member AS (
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.service_name, s.name,
           s.start_ns, s.end_ns, s.status, l.focus
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
),
child AS (
    SELECT c.trace_id, c.parent_span_id AS parent_id, c.status = '{ERROR}' AS failed,
           greatest(c.start_ns, p.start_ns) AS clipped_start,
           least(c.end_ns, p.end_ns) AS clipped_end
    FROM member AS c JOIN member AS p
      ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
),
ordered AS (
    SELECT *, max(clipped_end) OVER (
        PARTITION BY trace_id, parent_id ORDER BY clipped_start, clipped_end
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered_until
    FROM child
),
covered AS (
    SELECT trace_id, parent_id,
           sum(greatest(0, clipped_end - greatest(clipped_start,
                                                  coalesce(covered_until, clipped_start))))
               AS covered_ns,
           bool_or(failed) AS child_failed
    FROM ordered GROUP BY trace_id, parent_id
),
per_trace AS (
    SELECT m.trace_id, m.focus, m.service_name, m.name,
           sum(greatest(0, m.end_ns - m.start_ns - coalesce(cv.covered_ns, 0))) AS self_ns,
           bool_or(m.status = '{ERROR}' AND NOT coalesce(cv.child_failed, false)) AS origin
    FROM member AS m LEFT JOIN covered AS cv
      ON cv.trace_id = m.trace_id AND cv.parent_id = m.span_id
    GROUP BY m.trace_id, m.focus, m.service_name, m.name
)
SELECT service_name, name,
       count(*) FILTER (WHERE focus),
       count(*) FILTER (WHERE NOT focus),
       coalesce(sum(self_ns) FILTER (WHERE focus), 0),
       coalesce(sum(self_ns) FILTER (WHERE NOT focus), 0),
       count(*) FILTER (WHERE focus AND origin),
       count(*) FILTER (WHERE NOT focus AND origin)
FROM per_trace
GROUP BY service_name, name
ORDER BY service_name, name"""

# Traces of each group carrying each attribute value; ``?``: min support, limit.
_ATTRIBUTES: Final = f"""
member AS (
    SELECT s.trace_id, l.focus, s.attributes, s.resource
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
),
pair AS (
    SELECT m.trace_id, m.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.attributes) AS e
    UNION
    SELECT m.trace_id, m.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.resource) AS e
),
key_stats AS (
    SELECT key, count(DISTINCT value) AS key_values, count(DISTINCT trace_id) AS key_traces
    FROM pair WHERE value IS NOT NULL GROUP BY key
)
SELECT pair.key, pair.value, count(*) FILTER (WHERE focus) AS focus_traces,
       count(*) FILTER (WHERE NOT focus),
       any_value(key_stats.key_values), any_value(key_stats.key_traces)
FROM pair JOIN key_stats ON pair.key = key_stats.key
WHERE pair.value IS NOT NULL
GROUP BY pair.key, pair.value
HAVING count(*) FILTER (WHERE focus) >= ?
ORDER BY focus_traces DESC, pair.key, pair.value
LIMIT ?"""


def trace_groups(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    percentile: float,
    min_support: int,
    max_attributes: int,
    examples: int,
    sample: int,
    sample_ids: int = 0,
) -> TraceGroups:
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    spans = _target_spans(target, window)
    threshold: float | None = None
    if split is Split.SLOW:
        rows = fetch(
            f"SELECT quantile_cont(duration_ns, ?) FROM {TABLE}{spans.sql('WHERE')}",
            [percentile / 100, *spans.params],
        )
        threshold = None if rows[0][0] is None else float(rows[0][0])
        # At or above: when the slowest tenth ties (a timeout, a fixed delay), strictly
        # above the interpolated threshold would leave the slow group empty.
        focus, focus_params = "duration_ns >= ?", [threshold if threshold is not None else 0.0]
    else:
        focus, focus_params = f"status = '{ERROR}'", []
    grouped = (
        f"WITH grouped AS (SELECT trace_id, bool_or({focus}) AS focus,"
        f" max(duration_ns) AS worst FROM {TABLE}{spans.sql('WHERE')} GROUP BY trace_id)"
    )
    params = [*focus_params, *spans.params]
    # The same sample every time: the first traces of each group by a hash of their id.
    labelled = (
        f"{grouped}, labelled AS (SELECT trace_id, focus, row_number() OVER (PARTITION BY focus"
        " ORDER BY hash(trace_id), trace_id) AS place FROM grouped QUALIFY place <= ?)"
    )
    sampled = [*params, checked_limit(sample, "sample")]

    sizes = fetch(
        f"{grouped} SELECT count(*) FILTER (WHERE focus), count(*) FILTER (WHERE NOT focus)"
        " FROM grouped",
        params,
    )[0]
    example_rows = fetch(
        f"{grouped} SELECT trace_id FROM grouped WHERE focus ORDER BY worst DESC, trace_id LIMIT ?",
        [*params, checked_limit(examples, "examples")],
    )
    operation_rows = fetch(f"{labelled}, {_OPERATIONS}", sampled)
    attribute_rows = fetch(
        f"{labelled}, {_ATTRIBUTES}",
        [*sampled, min_support, checked_limit(max_attributes, "max_attributes")],
    )
    id_rows = (
        fetch(
            f"{labelled} SELECT focus, trace_id FROM labelled WHERE place <= ? ORDER BY place",
            [*sampled, sample_ids],
        )
        if sample_ids > 0
        else []
    )
    focus_total, baseline_total = int(sizes[0] or 0), int(sizes[1] or 0)
    return TraceGroups(
        target=target,
        split=split,
        window=window,
        threshold_ns=threshold,
        focus_traces=focus_total,
        baseline_traces=baseline_total,
        focus_sample=min(focus_total, sample),
        baseline_sample=min(baseline_total, sample),
        operations=tuple(
            OperationPresence(row[0], row[1], *(int(value) for value in row[2:8]))
            for row in operation_rows
        ),
        attributes=tuple(
            AttributeCount(row[0], row[1], *(int(value) for value in row[2:6]))
            for row in attribute_rows
        ),
        examples=tuple(row[0] for row in example_rows),
        focus_ids=tuple(row[1] for row in id_rows if row[0]),
        baseline_ids=tuple(row[1] for row in id_rows if not row[0]),
    )


def _target_spans(target: Target, window: TimeWindow) -> Conditions:
    """The requests of ``target``: its entry spans, or root spans without a service."""
    where = in_window(window)
    if target.service is None:
        where.add(NO_PARENT)
        return where
    where.add(ENTRY)
    where.add("service_name = ?", target.service)
    if target.operation is not None:
        where.add("name = ?", target.operation)
    return where
