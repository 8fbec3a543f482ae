"""``DuckDBStore``: the embedded ``Store``, one DuckDB file owned by this process.

Writes go through the group-commit writer thread (see ``writer.py``); each read runs
on a cursor of its own so reads proceed while the writer commits. Every value in
SQL is a bound parameter (see ``sql.py``). The queries live by topic: ``search``
(traces and journeys), ``red`` (rate, errors, duration), ``service_map``,
``groups`` (slow or failed traces against the rest) and ``propagation``; this
class owns the connection and hands each of them a ``fetch``.

Fleet views (RED, percentiles, the service map) read the rollups the writer keeps
(``rollups.py``); the same answers by scanning spans stay available as ``scan``
(benchmarks and the consistency tests compare the two). A store opened with
``rollups=False`` keeps none and answers by scan: the baseline ingest is measured
against.

DuckDB 2.0 blocks the next ``execute`` on a connection while a previous result has
rows left unread, so reads always ``fetchall()`` and never share a cursor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Final

import duckdb

from threadline.server.aggregates import (
    OperationRed,
    PropagationFindings,
    ServiceMap,
    ServiceRed,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.batch import COLUMNS, SpanBatch, record_from_row
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanRecord,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import JourneyOrder, StoreError, StoreHealth
from threadline.server.storage.duckdb import backfill, deletion, groups, rollups, search
from threadline.server.storage.duckdb import propagation as propagation_queries
from threadline.server.storage.duckdb.scan import ScanViews
from threadline.server.storage.duckdb.schema import TABLE, create_statements
from threadline.server.storage.duckdb.sql import Row
from threadline.server.storage.duckdb.writer import GroupCommitWriter

_SELECT_SPAN: Final = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"


class DuckDBStore:
    """A ``Store`` in one DuckDB file; opening creates the schema if it is missing.

    Each method keeps the contract written on ``Store`` and at the top of
    ``threadline.server.storage.base``; the notes here say only how DuckDB does it.
    """

    def __init__(self, path: Path, *, max_pending_batches: int = 256, rollups: bool = True) -> None:
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        try:
            self._connection = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the span store at {path}: {exc}") from exc
        try:
            for statement in create_statements():
                self._connection.execute(statement)
            if rollups:
                backfill.ensure_rollups(self._connection)
        except duckdb.Error as exc:
            self._connection.close()
            raise StoreError(f"cannot create the span table in {path}: {exc}") from exc
        self._path = path
        self._rollups = rollups
        self.scan = ScanViews(self._fetch)
        self._lock = threading.Lock()  # guards cursor creation and closing
        self._closed = False
        self._writer = GroupCommitWriter(
            self._connection.cursor(),
            max_pending_batches=max_pending_batches,
            maintain_rollups=rollups,
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

    def get_traces(self, trace_ids: Sequence[str]) -> list[SpanRecord]:
        if not trace_ids:
            return []
        rows = self._fetch(
            f"{_SELECT_SPAN} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
            " ORDER BY trace_id, start_ns, span_id",
            [list(trace_ids)],
        )
        return [record_from_row(row) for row in rows]

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        return search.search_traces(self._fetch, query)

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        return search.journey_traces(
            self._fetch, session_id=session_id, user_id=user_id, limit=limit
        )

    def list_journeys(
        self, *, order: JourneyOrder = "recent", limit: int = 20, failed: bool | None = None
    ) -> list[JourneySummary]:
        return search.list_journeys(self._fetch, order=order, limit=limit, failed=failed)

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

    def has_service(self, service: str) -> bool:
        return bool(self._fetch(f"SELECT 1 FROM {TABLE} WHERE service_name = ? LIMIT 1", [service]))

    def operation_red(
        self, window: TimeWindow, *, service: str | None = None
    ) -> list[OperationRed]:
        if not self._rollups:
            return self.scan.operation_red(window, service=service)
        return rollups.operation_red(self._fetch, window, service)

    def service_red(
        self,
        service: str,
        window: TimeWindow,
        *,
        operation: str | None = None,
        bucket_ns: int | None = None,
    ) -> ServiceRed:
        if not self._rollups or (bucket_ns is not None and bucket_ns % rollups.MINUTE_NS):
            # Sub-minute buckets are finer than the rollups: answered by scan.
            return self.scan.service_red(service, window, operation=operation, bucket_ns=bucket_ns)
        return rollups.service_red(self._fetch, service, window, operation, bucket_ns)

    def service_map(self, window: TimeWindow) -> ServiceMap:
        if not self._rollups:
            return self.scan.service_map(window)
        return rollups.service_map(self._fetch, window)

    def trace_groups(
        self,
        target: Target,
        split: Split,
        window: TimeWindow,
        *,
        percentile: float = 90.0,
        min_support: int = 3,
        max_attributes: int = 500,
        examples: int = 5,
        sample: int = 5000,
        sample_ids: int = 0,
    ) -> TraceGroups:
        return groups.trace_groups(
            self._fetch,
            target,
            split,
            window,
            percentile=percentile,
            min_support=min_support,
            max_attributes=max_attributes,
            examples=examples,
            sample=sample,
            sample_ids=sample_ids,
        )

    def propagation(self, window: TimeWindow) -> PropagationFindings:
        return propagation_queries.propagation(self._fetch, window)

    # Deletions that change the rollups run on the writer, in one transaction with
    # the rollup subtraction, so spans and rollups never disagree.

    def delete_traces(self, trace_ids: Sequence[str]) -> int:
        if not trace_ids:
            return 0

        def delete(run: rollups.Run) -> int:
            if self._rollups:
                rollups.forget_traces(run, trace_ids)
            return deletion.delete_traces(run, trace_ids)

        return self._on_writer(delete, "deleting spans")

    def compact_rollups(self) -> None:
        """Fold the rollup deltas now (the writer also does it every so many commits)."""
        if self._rollups:

            def fold(run: rollups.Run) -> int:
                rollups.compact(run)
                return 0

            self._on_writer(fold, "folding rollups")

    def delete_older_than(self, cutoff_ns: int) -> int:
        # Retention asks often and usually finds nothing: answer that from a read
        # (zone maps make it cheap) instead of taking a turn on the writer.
        if not self._fetch(f"SELECT 1 FROM {TABLE} WHERE start_ns < ? LIMIT 1", [cutoff_ns]):
            return 0

        def delete(run: rollups.Run) -> int:
            if self._rollups:
                rollups.forget_before(run, cutoff_ns)
            return deletion.delete_older_than(run, cutoff_ns)

        return self._on_writer(delete, "deleting spans")

    def erase_user(self, user_id: str) -> int:
        def erase(run: rollups.Run) -> int:
            if self._rollups:
                rollups.forget_traces(run, rollups.user_trace_ids(run, user_id))
            return deletion.erase_user(run, user_id)

        return self._on_writer(erase, "erasing a user")

    def start_ns_quantile(self, fraction: float) -> int | None:
        return deletion.start_ns_quantile(self._fetch, fraction)

    def size_bytes(self) -> int:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
        try:
            return deletion.size_bytes(self._connection, self._path)
        except duckdb.Error as exc:
            raise StoreError(f"measuring the store failed: {exc}") from exc

    def health(self) -> StoreHealth:
        problem = ""
        if self._closed:
            problem = "the store is closed"
        elif not self._writer.running:
            problem = "the writer thread has stopped"
        elif not os.access(self._path, os.W_OK):
            problem = f"{self._path} is not writable by this process"
        return StoreHealth(
            writable=not problem,
            pending_batches=self._writer.pending,
            max_pending_batches=self._writer.max_pending,
            problem=problem,
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._writer.close()
        finally:
            self._connection.close()

    def _on_writer(self, task: Callable[[rollups.Run], int], doing: str) -> int:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            return int(self._writer.run(task).result())
        except StoreError as exc:
            raise StoreError(f"{doing} failed: {exc}") from exc

    def _fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        return self._run(sql, params, "reading spans")

    def _run(self, sql: str, params: Sequence[object], doing: str) -> list[Row]:
        """Every row of ``sql``, on a cursor of its own; ``doing`` names the work in errors."""
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            cursor = self._connection.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"{doing} failed: {exc}") from exc
        finally:
            cursor.close()
