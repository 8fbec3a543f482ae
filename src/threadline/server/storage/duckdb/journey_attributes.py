"""Attribute values on the traces of journeys that stopped at a funnel step and of
journeys that went on, for "what makes users leave".

The caller names the traces (one per sampled journey: the one that reached the
step), for every drop-off of a funnel at once, so this reads the spans of bounded
samples of traces, joined by trace id within the time range they started in.
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
    SELECT unnest(?::INTEGER[]) AS grp, unnest(?::VARCHAR[]) AS trace_id,
           unnest(?::BOOLEAN[]) AS stopped),
member AS (
    SELECT l.grp, s.trace_id, l.stopped, s.attributes, s.resource
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE s.start_ns BETWEEN ? AND ?),
pair AS (
    SELECT m.grp, m.trace_id, m.stopped, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.attributes) AS e
    UNION
    SELECT m.grp, m.trace_id, m.stopped, e.key, json_extract_string(e.value, '$') AS value
    FROM member AS m, json_each(m.resource) AS e),
key_stats AS (
    SELECT grp, key, count(DISTINCT value) AS key_values,
           count(DISTINCT trace_id) AS key_traces
    FROM pair WHERE value IS NOT NULL GROUP BY grp, key)
SELECT pair.grp, pair.key, pair.value, count(*) FILTER (WHERE stopped) AS stopped_traces,
       count(*) FILTER (WHERE NOT stopped),
       any_value(key_stats.key_values), any_value(key_stats.key_traces),
       list_sort(list(pair.trace_id) FILTER (WHERE stopped))[1:{EXAMPLES}]
FROM pair JOIN key_stats ON pair.grp = key_stats.grp AND pair.key = key_stats.key
WHERE pair.value IS NOT NULL AND NOT list_contains(?::VARCHAR[], pair.key)
GROUP BY pair.grp, pair.key, pair.value
HAVING count(*) FILTER (WHERE stopped) >= ?
QUALIFY row_number() OVER (
    PARTITION BY pair.grp ORDER BY stopped_traces DESC, pair.key, pair.value) <= ?
ORDER BY pair.grp, stopped_traces DESC, pair.key, pair.value"""


def journey_attributes(
    fetch: Fetch,
    samples: Sequence[tuple[Sequence[str], Sequence[str]]],
    start_ns: int,
    end_ns: int,
    *,
    skip_keys: Sequence[str],
    min_support: int,
    limit: int,
) -> list[list[JourneyAttribute]]:
    """For each (stopped, went on) pair of trace id lists: values on those traces
    (spans starting in [start_ns, end_ns]), on at least ``min_support`` stopped
    traces, most first, at most ``limit`` per pair. One read for every pair: the
    spans are joined once. ``skip_keys`` are never read out (the journey keys: a
    user id is not a factor a viewer may see)."""
    groups: list[int] = []
    ids: list[str] = []
    stopped: list[bool] = []
    for n, (stopped_ids, went_on_ids) in enumerate(samples):
        if not stopped_ids:
            continue  # nothing can be a factor of a drop-off nobody took
        for side, side_ids in ((True, stopped_ids), (False, went_on_ids)):
            groups += [n] * len(side_ids)
            ids += side_ids
            stopped += [side] * len(side_ids)
    found: list[list[JourneyAttribute]] = [[] for _ in samples]
    if not ids:
        return found
    rows = fetch(
        _COUNTS,
        [
            groups,
            ids,
            stopped,
            start_ns,
            end_ns,
            list(skip_keys),
            min_support,
            checked_limit(limit),
        ],
    )
    for r in rows:
        found[int(r[0])].append(
            JourneyAttribute(
                key=str(r[1]),
                value=str(r[2]),
                stopped=int(r[3]),
                went_on=int(r[4]),
                key_values=int(r[5]),
                key_traces=int(r[6]),
                examples=tuple(str(t) for t in r[7]),
            )
        )
    return found
