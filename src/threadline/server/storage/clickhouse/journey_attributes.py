"""Attribute values on the traces of journeys that stopped at a funnel step and of
journeys that went on, for "what makes users leave", on ClickHouse.

The same counts as the DuckDB store's (``duckdb/journey_attributes.py``): the caller
names the traces (one per sampled journey), for every drop-off at once; values of
span and resource attributes are counted once per trace and side, with per-key
cardinality figures, so the same noise and significance rules apply. Only the spans
of those traces are read: the trace id's bloom filter and the time range (day
partitions) skip the rest of the span table.

Map values are the attributes' JSON text: a string is read as its text (as DuckDB's
``json_extract_string``), a JSON ``null`` is no value, anything else is its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.journey_model import JourneyAttribute
from threadline.server.storage.clickhouse.sql import checked_limit
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Example traces kept per value.
EXAMPLES: Final = 3

_VALUE: Final = (
    "multiIf(JSONType(raw) = 'String', JSONExtractString(raw), JSONType(raw) = 'Null', NULL, raw)"
)


def _counts(spans: str) -> str:
    return f"""
WITH labelled AS (
    SELECT l.1 AS grp, l.2 AS trace_id, l.3 AS stopped
    FROM system.one
    ARRAY JOIN arrayZip({{groups:Array(UInt32)}}, {{ids:Array(String)}},
                        {{stopped:Array(UInt8)}}) AS l),
member AS (
    SELECT trace_id, attributes, resource FROM {spans}
    WHERE start_ns BETWEEN {{low:Int64}} AND {{high:Int64}}
      AND trace_id IN {{unique_ids:Array(String)}}),
raw_pair AS (
    SELECT DISTINCT grp, trace_id, stopped, item.1 AS key, item.2 AS raw
    FROM member AS m INNER JOIN labelled AS l ON m.trace_id = l.trace_id
    ARRAY JOIN arrayConcat(arrayZip(mapKeys(m.attributes), mapValues(m.attributes)),
                          arrayZip(mapKeys(m.resource), mapValues(m.resource))) AS item),
pair AS (
    SELECT DISTINCT grp, trace_id, stopped, key, assumeNotNull({_VALUE}) AS value
    FROM raw_pair WHERE {_VALUE} IS NOT NULL),
key_stats AS (
    SELECT grp, key, uniqExact(value) AS key_values, uniqExact(trace_id) AS key_traces
    FROM pair GROUP BY grp, key)
SELECT p.grp, p.key, p.value, countIf(p.stopped = 1) AS stopped_traces,
       countIf(p.stopped = 0), any(k.key_values), any(k.key_traces),
       arraySlice(arraySort(groupArrayIf(p.trace_id, p.stopped = 1)), 1, {EXAMPLES})
FROM pair AS p INNER JOIN key_stats AS k ON p.grp = k.grp AND p.key = k.key
WHERE NOT has({{skip:Array(String)}}, p.key)
GROUP BY p.grp, p.key, p.value
HAVING stopped_traces >= {{min_support:UInt64}}
ORDER BY p.grp, stopped_traces DESC, p.key, p.value
LIMIT {{limit:UInt64}} BY p.grp"""


def journey_attributes(
    fetch: Fetch,
    t: Tables,
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
    traces, most first, at most ``limit`` per pair. One read for every pair.
    ``skip_keys`` are never read out (the journey keys: a user id is not a factor a
    viewer may see)."""
    groups: list[int] = []
    ids: list[str] = []
    stopped: list[int] = []
    for n, (stopped_ids, went_on_ids) in enumerate(samples):
        if not stopped_ids:
            continue  # nothing can be a factor of a drop-off nobody took
        for side, side_ids in ((1, stopped_ids), (0, went_on_ids)):
            groups += [n] * len(side_ids)
            ids += side_ids
            stopped += [side] * len(side_ids)
    found: list[list[JourneyAttribute]] = [[] for _ in samples]
    if not ids:
        return found
    rows = fetch(
        _counts(t.spans),
        {
            "groups": groups,
            "ids": ids,
            "stopped": stopped,
            "unique_ids": sorted(set(ids)),
            "low": start_ns,
            "high": end_ns,
            "skip": list(skip_keys),
            "min_support": max(min_support, 0),
            "limit": checked_limit(limit),
        },
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
                examples=tuple(str(x) for x in r[7]),
            )
        )
    return found
