"""Trace search and journey lists in DuckDB: filters, sort orders and pages.

A search picks its page of trace ids first, from start and end times alone, so the
costlier summary aggregates run on ``limit`` traces rather than on all of them
(~15 ms instead of ~110 ms for the newest 20 of 1M spans). Every order ends in the
trace id, which makes the order total: a page that starts after a cursor (the
last trace's sort key and id) never repeats or skips a trace, even among traces
that share a start time or a duration.
"""

from __future__ import annotations

from typing import Final

from threadline.server.model import (
    JourneySummary,
    StatusCode,
    TraceCursor,
    TraceOrder,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import IdColumn, JourneyOrder
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    ERROR,
    USER_TRAFFIC,
    Conditions,
    Fetch,
    Row,
    checked_limit,
    span_attribute_is,
    synthetic,
    trace_has,
    trace_logged,
)

# The root of a trace is its span without a parent; a trace missing its root falls
# back to the earliest span.
_ROOT_FIRST: Final = "coalesce(parent_span_id, '') <> '', start_ns, span_id"

# Columns of a trace summary, in ``TraceSummary`` field order, for the traces in ``chosen``.
# A trace (or journey) whose spans carry several session or user ids shows the smallest.
_TRACE_SUMMARY: Final = f"""
SELECT trace_id,
       min(start_ns) AS trace_start_ns,
       max(end_ns) - min(start_ns) AS trace_duration_ns,
       arg_min(service_name, ({_ROOT_FIRST})) AS root_service,
       arg_min(name, ({_ROOT_FIRST})) AS root_operation,
       count(*) AS span_count,
       count(*) FILTER (WHERE status = '{ERROR}') AS error_count,
       list_sort(list_distinct(list(service_name))) AS services,
       min(session_id) AS session_id,
       min(user_id) AS user_id,
       bool_or({synthetic()}) AS synthetic
FROM {TABLE}
WHERE trace_id IN (SELECT trace_id FROM chosen)
GROUP BY trace_id"""

# Sort key of each order while choosing (over grouped spans) and when summarising,
# and whether larger keys come first.
_ORDER_KEYS: Final[dict[TraceOrder, tuple[str, str, bool]]] = {
    "recent": ("min(start_ns)", "trace_start_ns", True),
    "oldest": ("min(start_ns)", "trace_start_ns", False),
    "slowest": ("max(end_ns) - min(start_ns)", "trace_duration_ns", True),
    "fastest": ("max(end_ns) - min(start_ns)", "trace_duration_ns", False),
}

# Columns of a journey summary, in ``JourneySummary`` field order. A journey holds
# every span of the traces that carry its session id on any span, so services that
# do not stamp the id (third-party OTLP senders) still show.
_JOURNEY_TRACES: Final = f"""
WITH journey_trace AS (
    SELECT DISTINCT session_id, trace_id FROM {TABLE}
    WHERE session_id IS NOT NULL AND {USER_TRAFFIC}"""
_JOURNEY_SUMMARY: Final = f"""
)
SELECT journey_trace.session_id,
       min(span.user_id) AS user_id,
       min(span.start_ns) AS journey_start_ns,
       max(span.end_ns) AS journey_end_ns,
       count(DISTINCT span.trace_id) AS trace_count,
       count(*) AS span_count,
       count(*) FILTER (WHERE span.status = '{ERROR}') AS error_count,
       list_sort(list_distinct(list(span.service_name))) AS services
FROM journey_trace JOIN {TABLE} AS span ON span.trace_id = journey_trace.trace_id
GROUP BY journey_trace.session_id"""

_ID_COLUMNS: Final = frozenset({"trace_id", "session_id"})

_JOURNEY_ORDER: Final[dict[str, str]] = {
    "recent": "journey_end_ns DESC, journey_trace.session_id",
    "slowest": "journey_end_ns - journey_start_ns DESC, journey_trace.session_id",
}
_JOURNEY_FAILED: Final[dict[bool, str]] = {
    True: " HAVING count(*) FILTER (WHERE span.status = 'error') > 0",
    False: " HAVING count(*) FILTER (WHERE span.status = 'error') = 0",
}


def search_traces(fetch: Fetch, query: TraceQuery) -> list[TraceSummary]:
    # One span must match service, operation and status together.
    span = Conditions()
    if query.service is not None:
        span.add("service_name = ?", query.service)
    if query.operation is not None:
        span.add("name = ?", query.operation)
    if query.status is not None:
        span.add("status = ?", StatusCode(query.status).value)
    # The whole trace must lie in the time range, so each of its spans does too:
    # filtering spans first lets DuckDB skip row groups outside the range.
    in_range = Conditions()
    if query.start_ns is not None:
        in_range.add("start_ns >= ?", query.start_ns)
    if query.end_ns is not None:
        in_range.add("end_ns <= ?", query.end_ns)

    traces = Conditions()
    span.extend(in_range)
    if span.fragments:
        traces.extend(trace_has(span))
    # Each attribute pair may sit on a different span (the route on the gateway's,
    # the payment provider on the payment service's).
    for key, value in query.attributes:
        attribute = span_attribute_is(key, value)
        attribute.extend(in_range)
        traces.extend(trace_has(attribute))
    add_journey_keys(
        traces, session_id=query.session_id, user_id=query.user_id, journey_id=query.journey_id
    )
    traces.extend(trace_logged(query))
    if query.synthetic != "include":
        negation = "NOT " if query.synthetic == "exclude" else ""
        traces.add(f"trace_id {negation}IN (SELECT trace_id FROM {TABLE} WHERE {synthetic()})")

    whole = Conditions()
    if query.start_ns is not None:
        whole.add("min(start_ns) >= ?", query.start_ns)
    if query.end_ns is not None:
        whole.add("max(end_ns) <= ?", query.end_ns)
    if query.min_duration_ns is not None:
        whole.add("max(end_ns) - min(start_ns) >= ?", query.min_duration_ns)
    if query.max_duration_ns is not None:
        whole.add("max(end_ns) - min(start_ns) <= ?", query.max_duration_ns)
    if query.after is not None:
        whole.extend(_after(query.order, query.after))
    if query.offset < 0:
        raise ValueError(f"offset must be 0 or more, got {query.offset}")
    return trace_summaries(
        fetch, traces, whole, order=query.order, limit=query.limit, offset=query.offset
    )


def journey_traces(
    fetch: Fetch, *, session_id: str | None, user_id: str | None, limit: int
) -> list[TraceSummary]:
    if session_id is None and user_id is None:
        raise ValueError("journey_traces needs a session_id or a user_id")
    traces = Conditions()
    add_journey_keys(traces, session_id=session_id, user_id=user_id)
    return trace_summaries(fetch, traces, Conditions(), order="oldest", limit=limit)


def ids_with_prefix(fetch: Fetch, column: IdColumn, prefix: str, *, limit: int) -> list[str]:
    """Distinct ids of ``column`` that start with ``prefix``, sorted, at most ``limit``."""
    if column not in _ID_COLUMNS:
        raise ValueError(f"ids are looked up by prefix in {sorted(_ID_COLUMNS)}, not {column!r}")
    rows = fetch(
        f"SELECT DISTINCT {column} FROM {TABLE} WHERE starts_with({column}, ?)"
        f" ORDER BY {column} LIMIT ?",
        [prefix, checked_limit(limit)],
    )
    return [str(row[0]) for row in rows]


def list_journeys(
    fetch: Fetch,
    *,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[JourneySummary]:
    if order not in _JOURNEY_ORDER:
        raise ValueError(f"journey order must be one of {sorted(_JOURNEY_ORDER)}, got {order!r}")
    having = "" if failed is None else _JOURNEY_FAILED[failed]
    # A window picks the journeys' traces whose spans' start times reach into it (the
    # first before its end, the last at or after its start), as the trace summaries
    # answer it; traces are summarised whole.
    window = Conditions()
    if start_ns is not None:
        window.add("max(start_ns) >= ?", start_ns)
    if end_ns is not None:
        window.add("min(start_ns) < ?", end_ns)
    in_window = (
        f" AND trace_id IN (SELECT trace_id FROM {TABLE} WHERE {USER_TRAFFIC}"
        f" GROUP BY trace_id{window.sql('HAVING')})"
        if window.fragments
        else ""
    )
    rows = fetch(
        f"{_JOURNEY_TRACES}{in_window}{_JOURNEY_SUMMARY}{having}"
        f" ORDER BY {_JOURNEY_ORDER[order]} LIMIT ?",
        [*window.params, checked_limit(limit)],
    )
    return [journey_from_row(row) for row in rows]


def trace_summaries(
    fetch: Fetch,
    traces: Conditions,
    whole: Conditions,
    *,
    order: TraceOrder,
    limit: int,
    offset: int = 0,
) -> list[TraceSummary]:
    """Summaries of one page of the traces matching ``traces`` (spans) and ``whole`` (groups)."""
    if order not in _ORDER_KEYS:
        raise ValueError(f"trace order must be one of {sorted(_ORDER_KEYS)}, got {order!r}")
    choose_key, summary_key, descending = _ORDER_KEYS[order]
    direction = "DESC" if descending else "ASC"
    # A trace is listed for its user traffic: the SDK's stats spans make no trace.
    traces = Conditions([*traces.fragments, USER_TRAFFIC], list(traces.params))
    sql = (
        f"WITH chosen AS (SELECT trace_id FROM {TABLE}{traces.sql('WHERE')}"
        f" GROUP BY trace_id{whole.sql('HAVING')}"
        f" ORDER BY {choose_key} {direction}, trace_id LIMIT ? OFFSET ?)"
        f"{_TRACE_SUMMARY} ORDER BY {summary_key} {direction}, trace_id"
    )
    params = [*traces.params, *whole.params, checked_limit(limit), offset]
    return [trace_from_row(row) for row in fetch(sql, params)]


def add_journey_keys(
    conditions: Conditions,
    *,
    session_id: str | None,
    user_id: str | None,
    journey_id: str | None = None,
) -> None:
    """Keep traces that carry the session / user / journey id on any of their spans."""
    for column, value in (
        ("session_id", session_id),
        ("user_id", user_id),
        ("journey_id", journey_id),
    ):
        if value is not None:
            conditions.add(f"trace_id IN (SELECT trace_id FROM {TABLE} WHERE {column} = ?)", value)


def _after(order: TraceOrder, cursor: TraceCursor) -> Conditions:
    """Groups strictly after ``cursor`` in ``order`` (key, then trace id ascending)."""
    if cursor.order != order:
        raise ValueError(f"a cursor of a {cursor.order!r} search cannot page a {order!r} one")
    choose_key, _, descending = _ORDER_KEYS[order]
    beyond = "<" if descending else ">"
    conditions = Conditions()
    conditions.add(
        f"({choose_key} {beyond} ? OR ({choose_key} = ? AND trace_id > ?))",
        cursor.key,
        cursor.key,
        cursor.trace_id,
    )
    return conditions


def journey_from_row(row: Row) -> JourneySummary:
    """A journey list row: session, user, start, end, traces, spans, errors, services."""
    return JourneySummary(
        session_id=row[0],
        user_id=row[1],
        start_ns=int(row[2]),
        end_ns=int(row[3]),
        trace_count=int(row[4]),
        span_count=int(row[5]),
        error_count=int(row[6]),
        services=tuple(row[7]),
    )


def trace_from_row(row: Row) -> TraceSummary:
    """A trace list row: id, start, duration, root service and operation, spans,
    errors, services, session, user and (when read) the synthetic mark."""
    return TraceSummary(
        trace_id=row[0],
        start_ns=int(row[1]),
        duration_ns=int(row[2]),
        root_service=row[3],
        root_operation=row[4],
        span_count=int(row[5]),
        error_count=int(row[6]),
        services=tuple(row[7]),
        session_id=row[8],
        user_id=row[9],
        synthetic=bool(row[10]) if len(row) > 10 else False,
    )
