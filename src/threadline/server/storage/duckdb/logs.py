"""Log records in DuckDB: the ``logs`` table, its append, its reads and its deletes.

The table mirrors ``LOG_SCHEMA`` column for column. Logs are appended by the
group-commit writer in the same transactions as spans (``append``), read by trace,
span, journey key, service, severity, text and time (``select``), and deleted with
the spans they belong to: by age (their own time), and by user (every record naming
the user, of one of the user's sessions, or of one of the traces erasure deletes).
Re-sent log records are not dropped: OTLP log records have no identity to tell a
re-send from a second identical line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from threadline.server.log_batch import LOG_COLUMNS, LogQuery, LogRecord, log_from_row

# As ``sql.Row``; not imported from there, since ``schema`` imports this module and
# ``sql`` imports ``schema``.
Row = tuple[Any, ...]

LOGS: Final = "logs"
Execute = Callable[[str, Sequence[object]], list[Row]]

# Indexed like spans: a trace page and a journey page look logs up by these.
INDEXED_COLUMNS: Final[tuple[str, ...]] = ("trace_id", "session_id", "user_id")

LOGS_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {LOGS} (
    time_ns BIGINT NOT NULL,
    observed_ns BIGINT NOT NULL,
    trace_id VARCHAR,
    span_id VARCHAR,
    service_name VARCHAR NOT NULL,
    severity_number BIGINT NOT NULL,
    severity_text VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    body_kind VARCHAR NOT NULL,
    session_id VARCHAR,
    user_id VARCHAR,
    journey_id VARCHAR,
    attributes VARCHAR NOT NULL,
    resource VARCHAR NOT NULL,
    scope_name VARCHAR NOT NULL
)"""


def statements() -> list[str]:
    """DDL for the logs table and its indexes; idempotent."""
    return [
        LOGS_DDL,
        *(
            f"CREATE INDEX IF NOT EXISTS {LOGS}_{column} ON {LOGS} ({column})"
            for column in INDEXED_COLUMNS
        ),
    ]


def append(execute: Execute, incoming: str) -> None:
    """Append the registered Arrow table named ``incoming`` (``LOG_SCHEMA``)."""
    names = ", ".join(LOG_COLUMNS)
    execute(f"INSERT INTO {LOGS} ({names}) SELECT {names} FROM {incoming}", [])


def select(execute: Execute, query: LogQuery) -> list[LogRecord]:
    """The records ``query`` asks for, in time order (newest first when it says so)."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (
        ("trace_id", query.trace_id),
        ("span_id", query.span_id),
        ("session_id", query.session_id),
        ("service_name", query.service),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.user_ids:
        where.append("user_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(query.user_ids))
    if query.min_severity is not None:
        where.append("severity_number >= ?")
        params.append(query.min_severity)
    if query.text:
        # contains() on lower-cased text: a LIKE pattern would read % and _ as wildcards.
        where.append("contains(lower(body), ?)")
        params.append(query.text.lower())
    if query.start_ns is not None:
        where.append("time_ns >= ?")
        params.append(query.start_ns)
    if query.end_ns is not None:
        where.append("time_ns < ?")
        params.append(query.end_ns)
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    order = "DESC" if query.newest_first else "ASC"
    rows = execute(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM {LOGS} {condition}"
        f" ORDER BY time_ns {order}, observed_ns {order}, rowid {order} LIMIT ? OFFSET ?",
        [*params, query.limit, query.offset],
    )
    return [log_from_row(row) for row in rows]


def traces_with_log(
    *,
    text: str | None,
    min_severity: int | None,
    service: str | None,
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[str, list[object]] | None:
    """A condition on ``trace_id`` keeping the traces that logged a record matching
    all the filters given, with its parameters; None when no filter is given.

    The time bounds are inclusive, as a trace search's; they let the scan skip
    row groups of other times.
    """
    where: list[str] = ["trace_id IS NOT NULL"]
    params: list[object] = []
    if text:
        # contains(), as ``select``: a LIKE pattern would read % and _ as wildcards.
        where.append("contains(lower(body), ?)")
        params.append(text.lower())
    if min_severity is not None:
        where.append("severity_number >= ?")
        params.append(min_severity)
    if service is not None:
        where.append("service_name = ?")
        params.append(service)
    if not params:
        return None
    if start_ns is not None:
        where.append("time_ns >= ?")
        params.append(start_ns)
    if end_ns is not None:
        where.append("time_ns <= ?")
        params.append(end_ns)
    return f"trace_id IN (SELECT trace_id FROM {LOGS} WHERE {' AND '.join(where)})", params


def any_older_than(execute: Execute, cutoff_ns: int) -> bool:
    return bool(execute(f"SELECT 1 FROM {LOGS} WHERE time_ns < ? LIMIT 1", [cutoff_ns]))


def delete_older_than(execute: Execute, cutoff_ns: int) -> int:
    return _count(execute(f"DELETE FROM {LOGS} WHERE time_ns < ?", [cutoff_ns]))


def erase_user(
    execute: Execute,
    forms: Sequence[str],
    trace_ids: Sequence[str],
    carries_user: str,
    spans: str,
) -> int:
    """Delete the user's records: those naming one of ``forms`` (``carries_user``, the
    spans' rule, with ``$1`` the forms), those of a session any such record or span
    had (in the table ``spans``), and those of ``trace_ids`` (the traces erasure deletes)."""
    if not forms:
        return 0
    sessions = f"""
        SELECT session_id FROM {LOGS} WHERE session_id IS NOT NULL AND ({carries_user})
        UNION SELECT session_id FROM {spans} WHERE session_id IS NOT NULL AND ({carries_user})
    """
    return _count(
        execute(
            f"""DELETE FROM {LOGS} WHERE ({carries_user})
            OR session_id IN ({sessions})
            OR trace_id IN (SELECT unnest($2::VARCHAR[]))""",
            [list(forms), list(trace_ids)],
        )
    )


def count(execute: Execute) -> int:
    return _count(execute(f"SELECT count(*) FROM {LOGS}", []))


def _count(rows: list[Row]) -> int:
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
