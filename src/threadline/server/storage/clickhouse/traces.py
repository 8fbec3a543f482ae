"""Reading spans back on ClickHouse: traces by id, the services, the counts.

A trace by id reads its time range from ``trace_id_ts`` first (ordered by trace
id: one granule), and then only the ``spans`` partitions and granules of that range
(the span table is ordered by service and time, not by trace id; the trace id's
bloom filter skips the other granules of the range). A trace's spans still sit in
one granule per service × operation it touched, each read whole: the cost
``bench/store_size.py`` prints, and the reason Jaeger keeps a second span table
ordered by trace id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.analysis import time_slices
from threadline.server.model import ServiceOperations, SpanRecord, StoreCounts
from threadline.server.storage.clickhouse.schema import START_TIME
from threadline.server.storage.clickhouse.sql import SPAN_COLUMNS, USER_TRAFFIC, spans_from_rows
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# The time as the sort key holds it: a range on it lets the primary index skip, in
# every service × operation, the granules outside the trace's seconds (a range on
# ``start_ns`` alone prunes only parts).
_KEY_TIME: Final = f"toDateTime({START_TIME})"


def get_traces(fetch: Fetch, t: Tables, trace_ids: Sequence[str]) -> list[SpanRecord]:
    """Every span of the traces, by trace id then start time."""
    if not trace_ids:
        return []
    # The ranges first, as constants of the span query: a scalar subquery in the same
    # statement was measured slower than the two reads.
    starts, params = starts_in(span_ranges(fetch, t, trace_ids))
    rows = fetch(
        f"SELECT {SPAN_COLUMNS} FROM {t.spans} WHERE trace_id IN {{ids:Array(String)}}"
        f" AND {starts}",
        {"ids": list(trace_ids), **params},
    )
    # Sorted here: a trace's few rows sort in no time, an ORDER BY cost a merge step.
    records = spans_from_rows(rows)
    records.sort(key=lambda r: (r.trace_id, r.start_ns, r.span_id))
    return records


def span_ranges(fetch: Fetch, t: Tables, trace_ids: Sequence[str]) -> list[tuple[int, int]]:
    """Where the spans of the traces start, as a few ranges (``time_slices.covering``):
    traces spread over a window then read a few runs of granules, not all of them."""
    rows = fetch(
        f"SELECT min(start_ns), max(end_ns) FROM {t.trace_ts}"
        " WHERE trace_id IN {ids:Array(String)} GROUP BY trace_id",
        {"ids": list(trace_ids)},
    )
    return time_slices.covering((int(low), int(high)) for low, high in rows)


def starts_in(ranges: Sequence[tuple[int, int]]) -> tuple[str, dict[str, object]]:
    """A condition on a span's start within any of the closed ``ranges``, with its
    parameters; ``0`` (nothing) without ranges."""
    if not ranges:
        return "0", {}
    params: dict[str, object] = {}
    parts = []
    for index, (low, high) in enumerate(ranges):
        params[f"start{index}"], params[f"end{index}"] = low, high
        first, last = f"{{start{index}:Int64}}", f"{{end{index}:Int64}}"
        parts.append(
            f"(start_ns >= {first} AND start_ns <= {last}"
            f" AND {_KEY_TIME} >= toDateTime(fromUnixTimestamp64Nano({first}))"
            f" AND {_KEY_TIME} <= toDateTime(fromUnixTimestamp64Nano({last})))"
        )
    return "(" + " OR ".join(parts) + ")", params


def services(fetch: Fetch, t: Tables) -> list[ServiceOperations]:
    rows = fetch(
        f"SELECT service_name, arraySort(groupUniqArrayIf(name, {USER_TRAFFIC}))"
        f" FROM {t.spans} GROUP BY service_name ORDER BY service_name",
        {},
    )
    return [ServiceOperations(service=row[0], operations=tuple(row[1])) for row in rows]


def counts(fetch: Fetch, t: Tables) -> StoreCounts:
    spans, traces, sessions = fetch(
        f"SELECT count(), uniqExact(trace_id), uniqExact(session_id) FROM {t.spans}", {}
    )[0]
    return StoreCounts(spans=int(spans), traces=int(traces), sessions=int(sessions))


def has_service(fetch: Fetch, t: Tables, service: str) -> bool:
    return bool(
        fetch(f"SELECT 1 FROM {t.spans} WHERE service_name = {{s:String}} LIMIT 1", {"s": service})
    )
