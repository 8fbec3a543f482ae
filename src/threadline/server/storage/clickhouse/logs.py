"""Reading log records on ClickHouse (``LogQuery``), as the DuckDB store reads them."""

from __future__ import annotations

from threadline.server.log_batch import LOG_COLUMNS, LogQuery, LogRecord, log_from_row
from threadline.server.storage.clickhouse.sql import Bound, where
from threadline.server.storage.clickhouse.tables import Fetch, Tables


def select(fetch: Fetch, t: Tables, query: LogQuery) -> list[LogRecord]:
    """The records ``query`` asks for, in time order (newest first when it says so)."""
    bound = Bound()
    conditions: list[str] = []
    for column, value in (
        ("trace_id", query.trace_id),
        ("span_id", query.span_id),
        ("session_id", query.session_id),
        ("service_name", query.service),
    ):
        if value is not None:
            conditions.append(f"{column} = {bound.add(value, 'String')}")
    if query.user_ids:
        conditions.append(f"has({bound.add(list(query.user_ids), 'Array(String)')}, user_id)")
    if query.min_severity is not None:
        conditions.append(f"severity_number >= {bound.add(query.min_severity, 'Int64')}")
    if query.text:
        # A substring, not a LIKE pattern: % and _ in the text are themselves.
        text = bound.add(query.text.lower(), "String")
        conditions.append(f"positionUTF8(lower(body), {text}) > 0")
    if query.start_ns is not None:
        conditions.append(f"time_ns >= {bound.add(query.start_ns, 'Int64')}")
    if query.end_ns is not None:
        conditions.append(f"time_ns < {bound.add(query.end_ns, 'Int64')}")
    order = "DESC" if query.newest_first else "ASC"
    rows = fetch(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM {t.logs}{where(conditions)}"
        f" ORDER BY time_ns {order}, observed_ns {order}"
        f" LIMIT {bound.add(query.limit, 'UInt64')} OFFSET {bound.add(query.offset, 'UInt64')}",
        bound.params,
    )
    return [log_from_row(row) for row in rows]
