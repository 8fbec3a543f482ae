"""The ClickHouse writer: one thread appends queued batches with synchronous inserts.

Why synchronous inserts (and not ``async_insert``): the writer already groups what
arrives together into one insert (as DuckDB's group commit does), so parts are
large and few without the server buffering for us; and the future of each batch,
which the OTLP 200 waits for, must resolve only once ClickHouse has the rows. A
synchronous insert returns after the part is written (and fsynced, see
``schema._DURABLE``), which is exactly that promise; ``async_insert`` with
``wait_for_async_insert=1`` would only add the server's buffer timeout to every
acknowledgement, and with ``=0`` an acknowledged span could be lost.

Re-sent spans are dropped before the insert (the ``Store`` contract's idempotence):
the group's keys are deduplicated, then those already stored (same trace id, span
id and start) are read back through the trace id's bloom filter and left out. One
writer per process does this, so it is exact for one server; across several
servers sharing a database a retry racing its original may be stored twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch
from threadline.server.storage.base import StoreError, StoreOverloaded
from threadline.server.storage.clickhouse import schema, staging
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.tables import Tables

logger = logging.getLogger(__name__)

# Rows appended in one insert at most: ClickHouse wants inserts of thousands of rows
# or more (each makes a part), and a bound keeps the first caller of a group from
# waiting behind an unbounded backlog.
MAX_GROUP_ROWS: Final = 50_000
CLOSE_TIMEOUT_S: Final = 60.0
# Quiet this long after a write and the writer does its deferred work (as DuckDB's
# writer folds after ``IDLE_FOLD_S``).
IDLE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class _Pending:
    batch: SpanBatch | LogBatch
    future: Future[None]


_STOP: Final = None


class InsertWriter:
    """Appends queued batches, grouped, on its own thread."""

    def __init__(
        self,
        connection: Connection,
        tables: Tables,
        *,
        max_pending_batches: int,
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        self._connection = connection
        self._tables = tables
        self._counter = staging.Counter(connection, tables)
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_pending_batches)
        self._max_pending = max_pending_batches
        self._closed = False
        self._lock = threading.Lock()  # orders "accept a batch" against "close"
        # Held from a batch's insert to the end of its pair count, and by deletions:
        # a deletion subtracting between the two would subtract pairs never counted.
        self.turn = threading.Lock()
        self.inserts = 0
        self._on_idle = on_idle
        self._written_since_idle = False
        self._unnamed = 0  # span inserts since idle work last succeeded (with ``on_idle``)
        self._thread = threading.Thread(
            target=self._run, name="threadline-clickhouse-writer", daemon=True
        )
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def unnamed_inserts(self) -> int:
        """Span inserts the idle work (naming error origins) has not taken in yet: until
        it has, their failed traces show no error origin (0 without idle work)."""
        return self._unnamed

    def submit(self, batch: SpanBatch | LogBatch) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed; it accepts no more writes")
            try:
                self._queue.put_nowait(_Pending(batch, future))
            except queue.Full:
                raise StoreOverloaded(
                    f"{self._max_pending} batches are already waiting to be written"
                ) from None
        return future

    def close(self) -> None:
        """Insert everything accepted so far, then stop the thread; idempotent."""
        with self._lock:
            already, self._closed = self._closed, True
        if not already:
            self._queue.put(_STOP, timeout=CLOSE_TIMEOUT_S)
        self._thread.join(timeout=CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            raise StoreError(f"pending writes were not inserted within {CLOSE_TIMEOUT_S:.0f} s")

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group, stopping = self._take_group()
            if group:
                self._write_group(group)

    def _next(self) -> _Pending | None:
        """The next queued item; once the writer has been idle for ``IDLE_S`` after
        writing, ``on_idle`` runs first (the work a burst leaves for later: naming
        error origins, which reads whole traces)."""
        if self._on_idle is not None and self._written_since_idle:
            try:
                return self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                self._written_since_idle = False
                try:
                    self._on_idle()
                except Exception:
                    logger.exception("the ClickHouse writer's idle work failed; spans are kept")
                else:  # only this thread inserts: the work took in every insert
                    self._unnamed = 0
        return self._queue.get()

    def _take_group(self) -> tuple[list[_Pending], bool]:
        first = self._next()
        if first is _STOP:
            return [], True
        group, rows = [first], len(first.batch)
        while rows < MAX_GROUP_ROWS:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is _STOP:
                return group, True
            group.append(pending)
            rows += len(pending.batch)
        return group, False

    def _write_group(self, group: list[_Pending]) -> None:
        live = [p for p in group if p.future.set_running_or_notify_cancel()]
        spans = [p.batch for p in live if isinstance(p.batch, SpanBatch)]
        self._written_since_idle = self._written_since_idle or bool(spans)
        logs = [p.batch for p in live if isinstance(p.batch, LogBatch)]
        try:
            if spans:
                self._insert_spans(SpanBatch.concat(spans).table)
            if logs:
                table = pa.concat_tables([b.table for b in logs])
                self._connection.insert_arrow(schema.LOGS, table, doing="writing logs")
            self.inserts += 1
        except Exception as exc:  # every caller of the group learns of the failure
            error = exc if isinstance(exc, StoreError) else StoreError(f"writing failed: {exc}")
            logger.warning("a write of %d batches failed: %s", len(live), error)
            for pending in live:
                pending.future.set_exception(error)
            return
        if spans and self._on_idle is not None:
            self._unnamed += 1
        for pending in live:
            pending.future.set_result(None)

    def _insert_spans(self, table: pa.Table) -> None:
        fresh = self._drop_stored(_unique(table))
        if fresh.num_rows:
            with self.turn:
                # Keys and names before the insert (its views read the names), pairs
                # after (they join the stored spans): ``staging`` says why.
                self._counter.stage(fresh)
                self._connection.insert_arrow(schema.SPANS_INCOMING, fresh, doing="writing spans")
                starts = fresh["start_ns"]
                self._counter.count(pc.min(starts).as_py(), pc.max(starts).as_py())

    def _drop_stored(self, table: pa.Table) -> pa.Table:
        """``table`` without the spans already stored."""
        trace_ids = pc.unique(table["trace_id"]).to_pylist()
        starts = table["start_ns"]
        rows = self._connection.rows(
            f"SELECT trace_id, span_id, start_ns FROM {self._tables.spans}"
            " WHERE trace_id IN {ids:Array(String)}"
            " AND start_ns >= {low:Int64} AND start_ns <= {high:Int64}",
            {"ids": trace_ids, "low": pc.min(starts).as_py(), "high": pc.max(starts).as_py()},
            doing="checking for re-sent spans",
        )
        if not rows:
            return table
        stored = {(str(r[0]), str(r[1]), int(r[2])) for r in rows}
        keep = [key not in stored for key in _keys(table)]
        return table.filter(pa.array(keep, pa.bool_()))


def _keys(table: pa.Table) -> list[tuple[str, str, int]]:
    return list(
        zip(
            table["trace_id"].to_pylist(),
            table["span_id"].to_pylist(),
            table["start_ns"].to_pylist(),
            strict=True,
        )
    )


def _unique(table: pa.Table) -> pa.Table:
    """``table`` with each (trace id, span id, start) once, the first kept."""
    seen: set[tuple[str, str, int]] = set()
    keep: list[bool] = []
    for key in _keys(table):
        keep.append(key not in seen)
        seen.add(key)
    return table if all(keep) else table.filter(pa.array(keep, pa.bool_()))
