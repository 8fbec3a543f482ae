"""``DuckDBStore``: the embedded ``Store``, one DuckDB file owned by this process.

Writes go through the group-commit writer thread (see ``writer.py``); each read runs
on a cursor of its own so reads proceed while the writer commits. Every value in
SQL is a bound parameter: queries are assembled from fixed fragments plus a list of
``?`` parameters, so new filters (attributes, say) add a fragment and a value.

DuckDB 2.0 blocks the next ``execute`` on a connection while a previous result has
rows left unread, so reads always ``fetchall()`` and never share a cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb

from threadline.server.batch import COLUMNS, SpanBatch, record_from_row
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanRecord,
    StatusCode,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import JourneyOrder, StoreError
from threadline.server.storage.duckdb.schema import TABLE, create_statements
from threadline.server.storage.duckdb.writer import GroupCommitWriter

Row = tuple[Any, ...]

_SELECT_SPAN: Final = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"

# The root of a trace is its span without a parent (ingest may leave an empty
# string rather than NULL); a trace missing its root falls back to the earliest span.
_ROOT_FIRST: Final = "coalesce(parent_span_id, '') <> '', start_ns, span_id"

# Columns of a trace summary, in ``TraceSummary`` field order, for the traces in
# ``chosen``. Searches pick their page of trace ids first from start and end times
# alone, so the costlier aggregates run on ``limit`` traces rather than on all of
# them (~15 ms instead of ~110 ms for the newest 20 of 1M spans). The one ``?``
# binds the error status.
_TRACE_SUMMARY: Final = f"""
SELECT trace_id,
       min(start_ns) AS trace_start_ns,
       max(end_ns) - min(start_ns) AS trace_duration_ns,
       arg_min(service_name, ({_ROOT_FIRST})) AS root_service,
       arg_min(name, ({_ROOT_FIRST})) AS root_operation,
       count(*) AS span_count,
       count(*) FILTER (WHERE status = ?) AS error_count,
       list_sort(list_distinct(list(service_name))) AS services,
       any_value(session_id) AS session_id,
       any_value(user_id) AS user_id
FROM {TABLE}
WHERE trace_id IN (SELECT trace_id FROM chosen)
GROUP BY trace_id"""

# Columns of a journey summary, in ``JourneySummary`` field order; ``?`` as above.
# A journey holds every span of the traces that carry its session id on any span,
# so services that do not stamp the id (third-party OTLP senders) still show.
_JOURNEY_SUMMARY: Final = f"""
WITH journey_trace AS (
    SELECT DISTINCT session_id, trace_id FROM {TABLE} WHERE session_id IS NOT NULL
)
SELECT journey_trace.session_id,
       any_value(span.user_id) AS user_id,
       min(span.start_ns) AS journey_start_ns,
       max(span.end_ns) AS journey_end_ns,
       count(DISTINCT span.trace_id) AS trace_count,
       count(*) AS span_count,
       count(*) FILTER (WHERE span.status = ?) AS error_count,
       list_sort(list_distinct(list(span.service_name))) AS services
FROM journey_trace JOIN {TABLE} AS span ON span.trace_id = journey_trace.trace_id
GROUP BY journey_trace.session_id"""

_JOURNEY_ORDER: Final[dict[str, str]] = {
    "recent": "journey_end_ns DESC, journey_trace.session_id",
    "slowest": "journey_end_ns - journey_start_ns DESC, journey_trace.session_id",
}


@dataclass(slots=True)
class _Conditions:
    """``AND``-ed SQL fragments with their ``?`` parameters, in text order."""

    fragments: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def add(self, fragment: str, *params: object) -> None:
        self.fragments.append(fragment)
        self.params.extend(params)

    def sql(self, keyword: str) -> str:
        return f" {keyword} " + " AND ".join(self.fragments) if self.fragments else ""


class DuckDBStore:
    """A ``Store`` in one DuckDB file; opening creates the schema if it is missing."""

    def __init__(self, path: Path, *, max_pending_batches: int = 256) -> None:
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        try:
            self._connection = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the span store at {path}: {exc}") from exc
        try:
            for statement in create_statements():
                self._connection.execute(statement)
        except duckdb.Error as exc:
            self._connection.close()
            raise StoreError(f"cannot create the span table in {path}: {exc}") from exc
        self._lock = threading.Lock()  # guards cursor creation and closing
        self._closed = False
        self._writer = GroupCommitWriter(
            self._connection.cursor(), max_pending_batches=max_pending_batches
        )

    @property
    def commits(self) -> int:
        """Write transactions committed since opening; concurrent writes share them."""
        return self._writer.commits

    def write(self, batch: SpanBatch) -> Future[None]:
        if self._closed:
            raise StoreError("the store is closed; it accepts no more writes")
        if len(batch) == 0:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return self._writer.submit(batch)

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        rows = self._fetch(
            f"{_SELECT_SPAN} WHERE trace_id = ? ORDER BY start_ns, span_id", [trace_id]
        )
        return [record_from_row(row) for row in rows]

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        # One span must match service, operation and status together; the journey
        # keys may sit on any span of the trace, as in ``journey_traces``.
        span = _Conditions()
        if query.service is not None:
            span.add("service_name = ?", query.service)
        if query.operation is not None:
            span.add("name = ?", query.operation)
        if query.status is not None:
            span.add("status = ?", StatusCode(query.status).value)
        # The whole trace must lie in the time range, so each of its spans does too:
        # filtering spans first lets DuckDB skip row groups outside the range.
        if query.start_ns is not None:
            span.add("start_ns >= ?", query.start_ns)
        if query.end_ns is not None:
            span.add("end_ns <= ?", query.end_ns)

        traces = _Conditions()
        if span.fragments:
            traces.add(
                f"trace_id IN (SELECT trace_id FROM {TABLE}{span.sql('WHERE')})", *span.params
            )
        _add_journey_keys(traces, session_id=query.session_id, user_id=query.user_id)

        whole = _Conditions()
        if query.start_ns is not None:
            whole.add("min(start_ns) >= ?", query.start_ns)
        if query.end_ns is not None:
            whole.add("max(end_ns) <= ?", query.end_ns)
        if query.min_duration_ns is not None:
            whole.add("max(end_ns) - min(start_ns) >= ?", query.min_duration_ns)
        if query.max_duration_ns is not None:
            whole.add("max(end_ns) - min(start_ns) <= ?", query.max_duration_ns)

        return self._trace_summaries(traces, whole, newest_first=True, limit=query.limit)

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        if session_id is None and user_id is None:
            raise ValueError("journey_traces needs a session_id or a user_id")
        traces = _Conditions()
        _add_journey_keys(traces, session_id=session_id, user_id=user_id)
        return self._trace_summaries(traces, _Conditions(), newest_first=False, limit=limit)

    def list_journeys(
        self, *, order: JourneyOrder = "recent", limit: int = 20
    ) -> list[JourneySummary]:
        if order not in _JOURNEY_ORDER:
            raise ValueError(
                f"journey order must be one of {sorted(_JOURNEY_ORDER)}, got {order!r}"
            )
        rows = self._fetch(
            f"{_JOURNEY_SUMMARY} ORDER BY {_JOURNEY_ORDER[order]} LIMIT ?",
            [StatusCode.ERROR.value, _checked_limit(limit)],
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

    def services(self) -> list[ServiceOperations]:
        rows = self._fetch(
            f"SELECT service_name, list(DISTINCT name ORDER BY name) FROM {TABLE}"
            " GROUP BY service_name ORDER BY service_name",
            [],
        )
        return [ServiceOperations(service=row[0], operations=tuple(row[1])) for row in rows]

    def counts(self) -> StoreCounts:
        rows = self._fetch(
            f"SELECT count(*), count(DISTINCT trace_id), count(DISTINCT session_id) FROM {TABLE}",
            [],
        )
        spans, traces, sessions = rows[0]
        return StoreCounts(spans=int(spans), traces=int(traces), sessions=int(sessions))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._writer.close()
        finally:
            self._connection.close()

    def _trace_summaries(
        self, traces: _Conditions, whole: _Conditions, *, newest_first: bool, limit: int
    ) -> list[TraceSummary]:
        direction = "DESC" if newest_first else "ASC"
        sql = (
            f"WITH chosen AS (SELECT trace_id FROM {TABLE}{traces.sql('WHERE')}"
            f" GROUP BY trace_id{whole.sql('HAVING')}"
            f" ORDER BY min(start_ns) {direction}, trace_id LIMIT ?)"
            f"{_TRACE_SUMMARY} ORDER BY trace_start_ns {direction}, trace_id"
        )
        params = [*traces.params, *whole.params, _checked_limit(limit), StatusCode.ERROR.value]
        return [
            TraceSummary(
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
            for row in self._fetch(sql, params)
        ]

    def _fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            cursor = self._connection.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"reading spans failed: {exc}") from exc
        finally:
            cursor.close()


def _add_journey_keys(
    conditions: _Conditions, *, session_id: str | None, user_id: str | None
) -> None:
    """Keep traces that carry the session / user id on any of their spans."""
    for column, value in (("session_id", session_id), ("user_id", user_id)):
        if value is not None:
            conditions.add(f"trace_id IN (SELECT trace_id FROM {TABLE} WHERE {column} = ?)", value)


def _checked_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit
