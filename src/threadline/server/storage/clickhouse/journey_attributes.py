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
What it costs: the trace ids of the range's spans are read, and the attribute maps
of the granules holding a sampled trace (spans are ordered by service, operation
and time, not by trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.journey_model import JourneyAttribute
from threadline.server.storage.clickhouse.sql import checked_limit
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Example traces kept per value.
EXAMPLES: Final = 3

# A string value's text; a JSON null is no value; anything else is its JSON text.
# Strings are stored as ``json.dumps`` writes them, so they, and only they, start
# with a quote.
_VALUE: Final = "if(startsWith(raw, '\"'), JSONExtractString(raw), nullIf(raw, 'null'))"


def _counts(spans: str) -> str:
    # Values are made distinct per trace before the join to the labels (a trace's
    # spans repeat its resource values), and ``pair`` is named once: ClickHouse
    # evaluates a CTE at each use, so the per-key figures are window aggregates over
    # the per-value rows rather than a second grouping of ``pair``.
    return f"""
WITH labelled AS (
    SELECT l.1 AS grp, l.2 AS trace_id, l.3 AS stopped
    FROM system.one
    ARRAY JOIN arrayZip({{groups:Array(UInt32)}}, {{ids:Array(String)}},
                        {{stopped:Array(UInt8)}}) AS l),
items AS (
    SELECT DISTINCT trace_id, key, raw
    FROM {spans}
    ARRAY JOIN arrayConcat(mapKeys(attributes), mapKeys(resource)) AS key,
               arrayConcat(mapValues(attributes), mapValues(resource)) AS raw
    WHERE start_ns BETWEEN {{low:Int64}} AND {{high:Int64}}
      AND trace_id IN {{unique_ids:Array(String)}}),
valued AS (SELECT DISTINCT trace_id, key, {_VALUE} AS value FROM items),
pair AS (
    SELECT DISTINCT l.grp AS grp, v.trace_id AS trace_id, l.stopped AS stopped, v.key AS key,
           assumeNotNull(v.value) AS value
    FROM valued AS v INNER JOIN labelled AS l ON v.trace_id = l.trace_id
    WHERE v.value IS NOT NULL),
per_value AS (
    SELECT grp, key, value, countIf(stopped = 1) AS stopped_traces,
           countIf(stopped = 0) AS went_on, groupArray(trace_id) AS traces,
           arraySlice(arraySort(groupArrayIf(trace_id, stopped = 1)), 1, {EXAMPLES}) AS examples
    FROM pair GROUP BY grp, key, value)
SELECT grp, key, value, stopped_traces, went_on, key_values, key_traces, examples
FROM (
    SELECT *, count() OVER by_key AS key_values,
           length(groupUniqArrayArray(traces) OVER by_key) AS key_traces
    FROM per_value WINDOW by_key AS (PARTITION BY grp, key))
WHERE NOT has({{skip:Array(String)}}, key) AND stopped_traces >= {{min_support:UInt64}}
ORDER BY grp, stopped_traces DESC, key, value
LIMIT {{limit:UInt64}} BY grp"""


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
