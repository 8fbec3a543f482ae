"""Trace search and journey lists on ClickHouse, by aggregating the spans.

The same rules as the DuckDB store's scan (``duckdb/search.py``): one span must match
service, operation and status together, each journey key and attribute pair may sit
on any span, duration and time filters apply to the whole trace, and every order
ends in the trace id so pages never repeat or skip a trace. The page of trace ids is
chosen first from start and end times alone; the summaries are computed for it only.
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
from threadline.server.storage.clickhouse.sql import (
    ERROR,
    USER_TRAFFIC,
    Bound,
    checked_limit,
    map_value_is,
    where,
)
from threadline.server.storage.clickhouse.tables import Fetch, Row, Tables

# The root is the span without a parent; a trace missing it is named by its earliest.
_ROOT_FIRST: Final = "tuple(coalesce(parent_span_id, '') != '', start_ns, span_id)"

_ORDER_KEYS: Final[dict[TraceOrder, tuple[str, str, bool]]] = {
    "recent": ("min(start_ns)", "trace_start_ns", True),
    "oldest": ("min(start_ns)", "trace_start_ns", False),
    "slowest": ("max(end_ns) - min(start_ns)", "trace_duration_ns", True),
    "fastest": ("max(end_ns) - min(start_ns)", "trace_duration_ns", False),
}
_JOURNEY_ORDER: Final[dict[str, str]] = {
    "recent": "journey_end_ns DESC, session_id",
    "slowest": "journey_end_ns - journey_start_ns DESC, session_id",
}
_ID_COLUMNS: Final = frozenset({"trace_id", "session_id"})


def search_traces(fetch: Fetch, t: Tables, query: TraceQuery) -> list[TraceSummary]:
    bound = Bound()
    span: list[str] = []
    if query.service is not None:
        span.append(f"service_name = {bound.add(query.service, 'String')}")
    if query.operation is not None:
        span.append(f"name = {bound.add(query.operation, 'String')}")
    if query.status is not None:
        span.append(f"status = {bound.add(StatusCode(query.status).value, 'String')}")
    in_range: list[str] = []
    if query.start_ns is not None:
        in_range.append(f"start_ns >= {bound.add(query.start_ns, 'Int64')}")
    if query.end_ns is not None:
        in_range.append(f"end_ns <= {bound.add(query.end_ns, 'Int64')}")
    traces: list[str] = []
    if span or in_range:
        traces.append(_trace_has(t, [*span, *in_range]))
    for key, value in query.attributes:
        either = (
            f"({map_value_is('attributes', key, value, bound)}"
            f" OR {map_value_is('resource', key, value, bound)})"
        )
        traces.append(_trace_has(t, [either, *in_range]))
    _add_journey_keys(
        t,
        traces,
        bound,
        session_id=query.session_id,
        user_id=query.user_id,
        journey_id=query.journey_id,
    )
    logged = _trace_logged(t, query, bound)
    if logged:
        traces.append(logged)
    whole: list[str] = []
    if query.start_ns is not None:
        whole.append(f"min(start_ns) >= {bound.add(query.start_ns, 'Int64')}")
    if query.end_ns is not None:
        whole.append(f"max(end_ns) <= {bound.add(query.end_ns, 'Int64')}")
    if query.min_duration_ns is not None:
        whole.append(f"max(end_ns) - min(start_ns) >= {bound.add(query.min_duration_ns, 'Int64')}")
    if query.max_duration_ns is not None:
        whole.append(f"max(end_ns) - min(start_ns) <= {bound.add(query.max_duration_ns, 'Int64')}")
    if query.after is not None:
        whole.append(_after(query.order, query.after, bound))
    if query.offset < 0:
        raise ValueError(f"offset must be 0 or more, got {query.offset}")
    return trace_summaries(
        fetch, t, traces, whole, bound, order=query.order, limit=query.limit, offset=query.offset
    )


def journey_traces(
    fetch: Fetch, t: Tables, *, session_id: str | None, user_id: str | None, limit: int
) -> list[TraceSummary]:
    if session_id is None and user_id is None:
        raise ValueError("journey_traces needs a session_id or a user_id")
    bound = Bound()
    traces: list[str] = []
    _add_journey_keys(t, traces, bound, session_id=session_id, user_id=user_id)
    return trace_summaries(fetch, t, traces, [], bound, order="oldest", limit=limit)


def ids_with_prefix(
    fetch: Fetch, t: Tables, column: IdColumn, prefix: str, *, limit: int
) -> list[str]:
    if column not in _ID_COLUMNS:
        raise ValueError(f"ids are looked up by prefix in {sorted(_ID_COLUMNS)}, not {column!r}")
    rows = fetch(
        f"SELECT DISTINCT {column} FROM {t.spans}"
        f" WHERE {column} IS NOT NULL AND startsWith({column}, {{prefix:String}})"
        f" ORDER BY {column} LIMIT {{limit:UInt64}}",
        {"prefix": prefix, "limit": checked_limit(limit)},
    )
    return [str(row[0]) for row in rows]


def list_journeys(
    fetch: Fetch,
    t: Tables,
    *,
    order: JourneyOrder,
    limit: int,
    failed: bool | None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[JourneySummary]:
    if order not in _JOURNEY_ORDER:
        raise ValueError(f"journey order must be one of {sorted(_JOURNEY_ORDER)}, got {order!r}")
    bound = Bound()
    # A trace is in the journey of each session its user spans carry, and in the
    # window when those spans' start times reach into it.
    trace_having = ["notEmpty(sessions)"]
    if start_ns is not None:
        trace_having.append(f"last_user_start >= {bound.add(start_ns, 'Int64')}")
    if end_ns is not None:
        trace_having.append(f"first_user_start < {bound.add(end_ns, 'Int64')}")
    having = ""
    if failed is not None:
        having = f" HAVING sum(errors) {'>' if failed else '='} 0"
    # One pass over the spans: each trace's figures, then its sessions' sums.
    rows = fetch(
        f"""WITH journey_trace AS (
            SELECT trace_id,
                   groupUniqArrayIf(assumeNotNull(session_id),
                                    session_id IS NOT NULL AND {USER_TRAFFIC}) AS sessions,
                   minIf(start_ns, {USER_TRAFFIC}) AS first_user_start,
                   maxIf(start_ns, {USER_TRAFFIC}) AS last_user_start,
                   min(user_id) AS trace_user, min(start_ns) AS trace_start,
                   max(end_ns) AS trace_end,
                   count() AS spans, countIf(status = '{ERROR}') AS errors,
                   groupUniqArray(service_name) AS services
            FROM {t.spans} GROUP BY trace_id HAVING {" AND ".join(trace_having)})
        SELECT session_id, min(trace_user), min(trace_start) AS journey_start_ns,
               max(trace_end) AS journey_end_ns, count(), sum(spans), sum(errors),
               arraySort(groupUniqArrayArray(services))
        FROM journey_trace ARRAY JOIN sessions AS session_id
        GROUP BY session_id{having}
        ORDER BY {_JOURNEY_ORDER[order]} LIMIT {bound.add(checked_limit(limit), "UInt64")}""",
        bound.params,
    )
    return [
        JourneySummary(
            session_id=row[0],
            user_id=row[1],
            start_ns=int(row[2]),
            end_ns=int(row[3]),
            trace_count=int(row[4]),
            span_count=int(row[5]),
            error_count=int(row[6]),
            services=tuple(row[7]),
        )
        for row in rows
    ]


def trace_summaries(
    fetch: Fetch,
    t: Tables,
    traces: list[str],
    whole: list[str],
    bound: Bound,
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
    chosen = (
        f"SELECT trace_id FROM {t.spans}{where([*traces, USER_TRAFFIC])}"
        f" GROUP BY trace_id{where(whole, 'HAVING')}"
        f" ORDER BY {choose_key} {direction}, trace_id"
        f" LIMIT {bound.add(checked_limit(limit), 'UInt64')}"
        f" OFFSET {bound.add(offset, 'UInt64')}"
    )
    rows = fetch(
        f"""SELECT trace_id,
               min(start_ns) AS trace_start_ns,
               max(end_ns) - min(start_ns) AS trace_duration_ns,
               argMin(service_name, {_ROOT_FIRST}),
               argMin(name, {_ROOT_FIRST}),
               count(),
               countIf(status = '{ERROR}'),
               arraySort(groupUniqArray(service_name)),
               min(session_id),
               min(user_id)
        FROM {t.spans} WHERE trace_id IN ({chosen})
        GROUP BY trace_id ORDER BY {summary_key} {direction}, trace_id""",
        bound.params,
    )
    return [_trace_from_row(row) for row in rows]


def _trace_has(t: Tables, conditions: list[str]) -> str:
    return f"trace_id IN (SELECT trace_id FROM {t.spans}{where(conditions)})"


def _add_journey_keys(
    t: Tables,
    traces: list[str],
    bound: Bound,
    *,
    session_id: str | None,
    user_id: str | None,
    journey_id: str | None = None,
) -> None:
    for column, value in (
        ("session_id", session_id),
        ("user_id", user_id),
        ("journey_id", journey_id),
    ):
        if value is not None:
            traces.append(_trace_has(t, [f"{column} = {bound.add(value, 'String')}"]))


def _trace_logged(t: Tables, query: TraceQuery, bound: Bound) -> str:
    """Keep traces that logged a record matching the query's log filters ("" if none)."""
    conditions: list[str] = []
    if query.log_text:
        text = bound.add(query.log_text.lower(), "String")
        conditions.append(f"positionUTF8(lower(body), {text}) > 0")
    if query.log_severity is not None:
        conditions.append(f"severity_number >= {bound.add(query.log_severity, 'Int64')}")
    if query.log_service is not None:
        conditions.append(f"service_name = {bound.add(query.log_service, 'String')}")
    if not conditions:
        return ""
    if query.start_ns is not None:
        conditions.append(f"time_ns >= {bound.add(query.start_ns, 'Int64')}")
    if query.end_ns is not None:
        conditions.append(f"time_ns <= {bound.add(query.end_ns, 'Int64')}")
    return (
        f"trace_id IN (SELECT assumeNotNull(trace_id) FROM {t.logs}"
        f" WHERE trace_id IS NOT NULL AND {' AND '.join(conditions)})"
    )


def _after(order: TraceOrder, cursor: TraceCursor, bound: Bound) -> str:
    if cursor.order != order:
        raise ValueError(f"a cursor of a {cursor.order!r} search cannot page a {order!r} one")
    choose_key, _, descending = _ORDER_KEYS[order]
    beyond = "<" if descending else ">"
    key = bound.add(cursor.key, "Int64")
    return (
        f"({choose_key} {beyond} {key} OR ({choose_key} = {key}"
        f" AND trace_id > {bound.add(cursor.trace_id, 'String')}))"
    )


def _trace_from_row(row: Row) -> TraceSummary:
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
    )
