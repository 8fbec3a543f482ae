"""The group-commit writer: one thread owns DuckDB's write connection.

A commit costs ~1.4 ms, so one transaction per request would cap ingest near 600
requests/s. Callers therefore only queue ``(batch, future)``; the writer takes
everything pending (up to ``MAX_GROUP_ROWS``), appends it from Arrow in one
transaction and resolves every future of the group after ``COMMIT`` returns, which
is when DuckDB has made the group durable: written to its write-ahead log (a full row
group as blocks of the file, which the log then names). Requests arriving while
a commit runs share the next one, so the commit rate adapts to the load.

Log batches (``LogBatch``) queue and group the same way and are appended in the
same transaction as the spans of their group (``logs.py``).

In the same transaction the writer drops re-sent spans and keeps the rollups and
the trace summaries current (``rollups.py``, ``summaries.py``). Work that must
change them outside ingest (deletions) is queued here too, with ``run``, so it
never races an ingest transaction over the same rows.

The deltas are folded every ``rollups.COMPACT_EVERY`` commits (or ``COMPACT_EVERY_ROWS``
rows), and also once the writer has written no batch for ``IDLE_FOLD_S`` with commits
not folded yet: after a burst, reads are served from folded rows and error origins
(found when folding) show within seconds instead of waiting for the next 64 commits.
Tasks (a size measured, a deletion) are not batches: polling the size cannot put the
fold off.

Done-callbacks of the returned futures run on the writer thread; keep them short
(``asyncio.wrap_future`` only schedules a wake-up, which is the intended use).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from threadline.conventions import CLAMPED_FROM, JOURNEY_SYNTHETIC, SDK_STATS_SPAN
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch
from threadline.server.storage.base import StoreError, StoreOverloaded
from threadline.server.storage.duckdb import (
    health_rollups,
    known_names,
    logs,
    rollups,
    slo_rollups,
    summaries,
)
from threadline.server.storage.duckdb.resource_keys import ResourceKeys
from threadline.server.storage.duckdb.sql import fetcher

# The marker keys as they appear in a span's attribute JSON text.
SYNTHETIC_MARK: Final = f'"{JOURNEY_SYNTHETIC}"'
CLAMPED_MARK: Final = f'"{CLAMPED_FROM}"'
RETRY_MARKS: Final = tuple(f'"{key}"' for key in (slo_rollups.RESEND_KEY, slo_rollups.ATTEMPT_KEY))
_ANY_MARK: Final = "|".join(
    re.escape(mark) for mark in (SYNTHETIC_MARK, CLAMPED_MARK, *RETRY_MARKS)
)

logger = logging.getLogger(__name__)

# Bound on the rows appended in one transaction: one DuckDB row group. A transaction
# that fills a row group has DuckDB write it compressed straight to the file, where a
# smaller one goes to the write-ahead log whole and is compressed again at the next
# checkpoint: a backlog committed in groups this size stores 1.5 times as many spans a
# second as in groups of 50,000 (docs/performance.md). Small enough that the first
# caller of a group is not held behind an unbounded backlog (~0.4 s a commit). A
# single batch larger than this still goes alone in one transaction.
MAX_GROUP_ROWS: Final = 122_880
# The writer folds after ``rollups.COMPACT_EVERY`` commits or this many rows since the
# last fold, whichever comes first: a fold's work follows the spans since the last one,
# and under a backlog of full groups 64 commits would put 7.9M spans between folds.
COMPACT_EVERY_ROWS: Final = 3_200_000

# How long ``close`` waits for pending writes to be committed before giving up.
CLOSE_TIMEOUT_S: Final = 60.0

# Idle this long with commits not folded, the writer folds them.
IDLE_FOLD_S: Final = 2.0

_INCOMING: Final = "threadline_incoming"
_INCOMING_LOGS: Final = "threadline_incoming_logs"

# Work run alone in a transaction of its own on the writer's connection.
Task = Callable[[rollups.Run], Any]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Pending:
    batch: SpanBatch | LogBatch
    future: Future[None]


@dataclass(frozen=True, slots=True)
class _Task:
    """Work run on the writer's connection between two groups of batches.

    ``writes``: the work is a transaction of its own (``run``), so a failure is a write
    that failed; otherwise (``between_writes``) it opened none and its caller says what
    failed.
    """

    work: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any]
    writes: bool


_STOP: Final = None  # queued by ``close`` after the last accepted batch


class GroupCommitWriter:
    """Appends queued batches in shared transactions on its own thread."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        *,
        max_pending_batches: int,
        resource_keys: ResourceKeys,
        maintain_rollups: bool = True,
    ) -> None:
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        self._connection = connection
        self._rollups = maintain_rollups
        self._queue: queue.Queue[_Pending | _Task | None] = queue.Queue(maxsize=max_pending_batches)
        self._max_pending = max_pending_batches
        self._closed = False
        self._lock = threading.Lock()  # orders "accept a batch" against "close"
        self._commits = 0
        self._since_compaction = 0
        self._rows_since_compaction = 0
        self._unfolded = 0  # commits since the last fold that succeeded
        self._last_write = time.monotonic()  # of the last group of batches
        self._known_names = known_names.KnownNames()
        self._resource_keys = resource_keys
        self._thread = threading.Thread(
            target=self._run, name="threadline-duckdb-writer", daemon=True
        )
        self._thread.start()

    @property
    def commits(self) -> int:
        """Transactions committed so far; a group of batches counts once."""
        return self._commits

    @property
    def unfolded_commits(self) -> int:
        """Commits whose deltas no fold has taken in yet (0 without rollups): until then
        reads merge their rows on the fly and show no error origin for their traces."""
        return self._unfolded

    @property
    def pending(self) -> int:
        """Batches accepted and not yet committed (approximate, for health checks)."""
        return self._queue.qsize()

    @property
    def max_pending(self) -> int:
        return self._max_pending

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

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

    def run(self, task: Task) -> Future[Any]:
        """Run ``task`` on the writer's connection in a transaction of its own.

        Tasks go before the next group of batches; ``task`` gets a function that runs
        one statement and returns every row. The future holds what ``task`` returns.
        """
        future: Future[Any] = Future()
        self._queue_task(_Task(lambda _: self._in_transaction(task), future, writes=True))
        return future

    def between_writes(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> Future[_T]:
        """Run ``work`` on the writer's connection with no transaction open, before the
        next group of batches; the future holds what it returns.

        For what a write in flight would spoil: a checkpoint cannot run while one is
        open, so a size measured beside it would count the write-ahead log as well.
        """
        future: Future[_T] = Future()
        self._queue_task(_Task(work, future, writes=False))
        return future

    def fold(self, *, raise_failure: bool = False) -> Future[None]:
        """Fold the commits not folded yet now, as the writer does every
        ``rollups.COMPACT_EVERY`` commits and when idle, then checkpoint; resolves once
        folded. A failed fold leaves the deltas, which still sum right, and is logged;
        with ``raise_failure`` the future holds it as well.

        For a reader that wants folded rows (the SLO evaluator before a tick): the fold
        is work the writer would do within 64 commits anyway, done earlier.
        """
        return self.between_writes(lambda _: self._compact(raise_failure=raise_failure))

    def checkpoint(self) -> Future[None]:
        """Checkpoint now, as the writer does after each of its own folds; resolves once
        done (a checkpoint that cannot run now is left to the next fold or the bound)."""
        return self.between_writes(lambda _: self._checkpoint())

    def _queue_task(self, task: _Task) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed; it accepts no more writes")
            # Blocking when the queue is full: deletions wait their turn, ingest does not.
            try:
                self._queue.put(task, timeout=CLOSE_TIMEOUT_S)
            except queue.Full:
                raise StoreOverloaded(
                    f"the write queue stayed full for {CLOSE_TIMEOUT_S:.0f} s"
                ) from None

    def close(self) -> None:
        """Commit everything accepted so far, then stop the thread; idempotent."""
        with self._lock:
            already_closed, self._closed = self._closed, True
        if not already_closed:
            # No batch is accepted after ``_closed`` is set, so the writer drains the
            # queue and this put finds room.
            self._queue.put(_STOP, timeout=CLOSE_TIMEOUT_S)
        self._thread.join(timeout=CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            raise StoreError(f"pending writes were not committed within {CLOSE_TIMEOUT_S:.0f} s")

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group, task, stopping = self._take_group()
            if group:
                self._write_group(group)
            if task is not None:
                self._run_task(task)

    def _run_task(self, pending: _Task) -> None:
        if not pending.future.set_running_or_notify_cancel():
            return
        self._known_names.forget()
        try:
            result = pending.work(self._connection)
        except Exception as exc:
            pending.future.set_exception(_write_failed(exc) if pending.writes else exc)
        else:
            pending.future.set_result(result)

    def _take_group(self) -> tuple[list[_Pending], _Task | None, bool]:
        """Block for one batch, then take whatever else is already waiting.

        A task ends the group: it runs after the group, alone.
        """
        first = self._next()
        if first is _STOP:
            return [], None, True
        if isinstance(first, _Task):
            return [], first, False
        group = [first]
        rows = len(first.batch)
        while rows < MAX_GROUP_ROWS:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is _STOP:
                return self._started(group), None, True
            if isinstance(pending, _Task):
                return self._started(group), pending, False
            group.append(pending)
            rows += len(pending.batch)
        return self._started(group), None, False

    def _next(self) -> _Pending | _Task | None:
        """The next queued item; when no batch has been written for ``IDLE_FOLD_S`` and
        commits are not folded yet, fold them before waiting on."""
        if self._rollups and self._since_compaction:
            # Past the idle time already (a long task ran), what is waiting still goes first.
            remaining = max(0.0, self._last_write + IDLE_FOLD_S - time.monotonic())
            try:
                return self._queue.get(timeout=remaining)
            except queue.Empty:
                self._compact()
        return self._queue.get()

    @staticmethod
    def _started(group: list[_Pending]) -> list[_Pending]:
        # A caller may cancel a future until its write starts; such batches are dropped.
        return [p for p in group if p.future.set_running_or_notify_cancel()]

    def _write_group(self, group: Sequence[_Pending]) -> None:
        try:
            self._append([p.batch for p in group])
        except Exception as exc:  # any failure is reported on the futures, never lost
            if len(group) == 1:
                group[0].future.set_exception(_write_failed(exc))
                return
            # Retry each batch alone so one bad batch does not fail its neighbours.
            for pending in group:
                self._write_group([pending])
            return
        for pending in group:
            pending.future.set_result(None)
        self._since_compaction += 1
        if self._rollups:
            self._unfolded += 1
        self._rows_since_compaction += sum(len(pending.batch) for pending in group)
        self._last_write = time.monotonic()
        if self._rollups and (
            self._since_compaction >= rollups.COMPACT_EVERY
            or self._rows_since_compaction >= COMPACT_EVERY_ROWS
        ):
            self._compact()

    def _compact(self, *, raise_failure: bool = False) -> None:
        self._since_compaction = 0
        self._rows_since_compaction = 0
        failure: Exception | None = None
        try:
            self._in_transaction(compact_rollups)
        except Exception as exc:  # the deltas stay and still sum right; try again later
            logger.exception("folding rollup deltas failed")
            failure = exc
        try:
            self._in_transaction(summaries.fold)
        except Exception as exc:  # the rows stay and still merge right on read; try again later
            logger.exception("folding trace summary rows failed")
            failure = failure or exc
        if failure is None:  # only this thread commits: the fold took in every commit
            self._unfolded = 0
        self._checkpoint()
        if raise_failure and failure is not None:
            raise failure

    def _checkpoint(self) -> None:
        """Checkpoint after a fold: it rewrote and updated rows (summaries, journey steps
        and their links), and DuckDB keeps an updated row's versions, which every scan
        of its table reconciles, until the next checkpoint. Spans appended since the last
        checkpoint also wait in memory uncompressed until then, and scans read them more
        slowly than compressed ones. The store's bound on the log
        (``store.CHECKPOINT_THRESHOLD``) is set high so commits seldom checkpoint; this
        one, once per fold, keeps reads after a fold as fast as after a checkpoint."""
        try:
            self._connection.execute("CHECKPOINT")
        except duckdb.Error as exc:  # the next fold, or the bound, checkpoints instead
            logger.debug("checkpoint after a fold skipped: %s", exc)

    def _append(self, batches: Sequence[SpanBatch | LogBatch]) -> None:
        spans = [b for b in batches if isinstance(b, SpanBatch)]
        log_batches = [b for b in batches if isinstance(b, LogBatch)]
        if not log_batches:
            self._append_spans(spans)
            return
        log_table = LogBatch.concat(log_batches).table
        self._connection.register(_INCOMING_LOGS, log_table)
        try:
            if spans:
                # One transaction for both: the logs commit with the spans' rollups.
                self._append_spans(spans, with_logs=True)
            else:
                self._in_transaction(lambda run: logs.append(run, _INCOMING_LOGS))
        finally:
            self._connection.unregister(_INCOMING_LOGS)

    def _append_spans(self, batches: Sequence[SpanBatch], *, with_logs: bool = False) -> None:
        table = SpanBatch.concat(batches).table
        bounds = pc.min_max(table.column("start_ns"))
        start_bounds = (int(bounds["min"].as_py()), int(bounds["max"].as_py()))
        # Any span may be the parent of an edge (an inferred edge's caller has any
        # kind), so only a batch of nothing but the SDK's own telemetry, root spans of
        # traces of their own, skips the edge lookup.
        is_stats = pc.equal(table.column("name"), SDK_STATS_SPAN)
        may_pair = not bool(pc.all(is_stats).as_py())
        sdk_stats = bool(pc.any(is_stats).as_py())
        # Synthetic journeys carry the marker among their attributes, retried calls a
        # retry key; most batches have neither to count apart, and a text search is far
        # cheaper than the JSON reads. A span moved back from the future starts at its
        # receive time, so a re-sent copy starts later than the stored one; such batches
        # are deduplicated by id.
        marks = _marks(table.column("attributes"))
        names = known_names.batch_names(table) if self._rollups else frozenset()
        new_names = not self._known_names.all_known(names)
        # Known before the spans commit: a read that sees them knows their resources' keys.
        new_keys = self._resource_keys.take_in(table.column("resource"))
        self._connection.register(_INCOMING, table)

        def append(run: rollups.Run) -> None:
            rollups.append(
                run,
                _INCOMING,
                start_bounds,
                rollups=self._rollups,
                may_pair=may_pair,
                counters=(health_rollups.count,),
                synthetic=marks.synthetic,
                sdk_stats=sdk_stats,
                clamped=marks.clamped,
                new_names=new_names,
                retries=marks.retries,
            )
            self._resource_keys.record(run, new_keys)
            if with_logs:
                logs.append(run, _INCOMING_LOGS)

        try:
            self._in_transaction(append)
        finally:
            self._connection.unregister(_INCOMING)
        self._known_names.committed(names)
        self._resource_keys.committed(new_keys)

    def _in_transaction(self, task: Task) -> Any:
        connection = self._connection

        run = fetcher(connection)
        connection.execute("BEGIN TRANSACTION")
        try:
            result = task(run)
            connection.execute("COMMIT")
        except BaseException:
            _roll_back(connection)
            raise
        self._commits += 1
        return result


@dataclass(frozen=True, slots=True)
class _Marks:
    """Which marker keys a batch's attributes hold: most batches hold none, and each
    one absent spares the commit a parse of the spans' attributes for it."""

    synthetic: bool = False
    clamped: bool = False
    retries: bool = False


def _marks(attributes: pa.ChunkedArray) -> _Marks:
    """Whether any span's attributes hold the synthetic marker, the clamped marker, a
    retry key (``slo_rollups``).

    One regular-expression pass looks for any of them (RE2 finds a literal several times
    faster than ``match_substring``, which held a tenth of the writer's time); only
    the rare batch holding one is searched again to tell which.
    """
    if not pc.any(pc.match_substring_regex(attributes, _ANY_MARK)).as_py():
        return _Marks()

    def holds(*marks: str) -> bool:
        return any(bool(pc.any(pc.match_substring(attributes, m)).as_py()) for m in marks)

    return _Marks(holds(SYNTHETIC_MARK), holds(CLAMPED_MARK), holds(*RETRY_MARKS))


def compact_rollups(run: rollups.Run) -> None:
    """Fold the deltas of every rollup table (``rollups`` and ``health_rollups``)."""
    rollups.compact(run)
    health_rollups.compact(run)


def _roll_back(connection: duckdb.DuckDBPyConnection) -> None:
    try:
        connection.execute("ROLLBACK")
    except duckdb.Error:
        # A failed COMMIT has already ended the transaction; nothing is left to undo.
        logger.debug("rollback after a failed write found no open transaction")


def _write_failed(exc: Exception) -> StoreError:
    error = StoreError(f"writing the batch failed: {exc}")
    error.__cause__ = exc
    return error
