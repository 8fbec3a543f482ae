"""Attribute values on the traces of journeys that stopped at a funnel step and of
journeys that went on, for "what makes users leave".

The caller names the traces (one per sampled journey: the one that reached the
step), so this reads the spans of at most two bounded samples of traces, found by
trace id within the time range they started in — never the spans of a window.
Values are counted per trace as ``groups`` counts them for "what slow requests have
in common" (span and resource attributes, ``json_each``), with the same per-key
cardinality figures, so the same noise and significance rules apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.journey_model import JourneyAttribute
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Fetch, checked_limit

# Example traces kept per value.
EXAMPLES: Final = 3

_COUNTS: Final = f"""
WITH labelled AS (
    SELECT unnest(?::VARCHAR[]) AS trace_id, true AS stopped
    UNION ALL
    SELECT unnest(?::VARCHAR[]), false),
member AS (
    SELECT s.trace_id, l.stopped, s.attributes, s.resource
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE s.start_ns BETWEEN ? AND ?),
pair AS (
    SELECT m.trace_id, m.stopped, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.attributes) AS e
    UNION
    SELECT m.trace_id, m.stopped, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.resource) AS e),
key_stats AS (
    SELECT key, count(DISTINCT value) AS key_values, count(DISTINCT trace_id) AS key_traces
    FROM pair WHERE value IS NOT NULL GROUP BY key)
SELECT pair.key, pair.value, count(*) FILTER (WHERE stopped) AS stopped_traces,
       count(*) FILTER (WHERE NOT stopped),
       any_value(key_stats.key_values), any_value(key_stats.key_traces),
       list_sort(list(pair.trace_id) FILTER (WHERE stopped))[1:{EXAMPLES}]
FROM pair JOIN key_stats ON pair.key = key_stats.key
WHERE pair.value IS NOT NULL AND NOT list_contains(?::VARCHAR[], pair.key)
GROUP BY pair.key, pair.value
HAVING count(*) FILTER (WHERE stopped) >= ?
ORDER BY stopped_traces DESC, pair.key, pair.value
LIMIT ?"""


def journey_attributes(
    fetch: Fetch,
    stopped: Sequence[str],
    went_on: Sequence[str],
    start_ns: int,
    end_ns: int,
    *,
    skip_keys: Sequence[str],
    min_support: int,
    limit: int,
) -> list[JourneyAttribute]:
    """Values on the ``stopped`` and ``went_on`` traces (spans starting in
    [start_ns, end_ns]), on at least ``min_support`` stopped traces, most first.
    ``skip_keys`` are never read out (the journey keys: a user id is not a factor
    a viewer may see)."""
    if not stopped:
        return []
    rows = fetch(
        _COUNTS,
        [
            list(stopped),
            list(went_on),
            start_ns,
            end_ns,
            list(skip_keys),
            min_support,
            checked_limit(limit),
        ],
    )
    return [
        JourneyAttribute(
            key=str(r[0]),
            value=str(r[1]),
            stopped=int(r[2]),
            went_on=int(r[3]),
            key_values=int(r[4]),
            key_traces=int(r[5]),
            examples=tuple(str(t) for t in r[6]),
        )
        for r in rows
    ]
