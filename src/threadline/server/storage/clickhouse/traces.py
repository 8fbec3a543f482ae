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

from threadline.server.model import ServiceOperations, SpanRecord, StoreCounts
from threadline.server.storage.clickhouse.schema import START_TIME
from threadline.server.storage.clickhouse.sql import SPAN_COLUMNS, USER_TRAFFIC, span_from_row
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# The time as the sort key holds it: a range on it lets the primary index skip, in
# every service × operation, the granules outside the trace's seconds (a range on
# ``start_ns`` alone prunes only parts).
_KEY_TIME: Final = f"toDateTime({START_TIME})"


def get_traces(fetch: Fetch, t: Tables, trace_ids: Sequence[str]) -> list[SpanRecord]:
    """Every span of the traces, by trace id then start time."""
    if not trace_ids:
        return []
    ids = {"ids": list(trace_ids)}
    # The range first, as constants of the span query: a scalar subquery in the same
    # statement was measured slower than the two reads.
    found = fetch(
        f"SELECT count(), min(start_ns), max(end_ns) FROM {t.trace_ts}"
        " WHERE trace_id IN {ids:Array(String)}",
        ids,
    )
    if not found or not found[0][0]:
        return []
    rows = fetch(
        f"""SELECT {SPAN_COLUMNS} FROM {t.spans}
        WHERE trace_id IN {{ids:Array(String)}}
          AND start_ns >= {{low:Int64}} AND start_ns <= {{high:Int64}}
          AND {_KEY_TIME} >= toDateTime(fromUnixTimestamp64Nano({{low:Int64}}))
          AND {_KEY_TIME} <= toDateTime(fromUnixTimestamp64Nano({{high:Int64}}))""",
        {**ids, "low": int(found[0][1]), "high": int(found[0][2])},
    )
    # Sorted here: a trace's few rows sort in no time, an ORDER BY cost a merge step.
    records = [span_from_row(row) for row in rows]
    records.sort(key=lambda r: (r.trace_id, r.start_ns, r.span_id))
    return records


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
