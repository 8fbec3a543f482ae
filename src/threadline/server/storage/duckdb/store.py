"""``DuckDBStore``: the embedded ``Store``, one DuckDB file owned by this process.

Writes go through the group-commit writer thread (see ``writer.py``); each read runs
on a cursor of its own, in a transaction of its own (``_read``: all its statements see
one snapshot), so reads proceed while the writer commits. Every value in
SQL is a bound parameter (see ``sql.py``). The queries live by topic: ``search``
(traces and journeys), ``red`` (rate, errors, duration), ``service_map``,
``group_sample`` and ``groups`` (slow or failed traces against the rest),
``propagation``, ``slo_reads`` (SLO counts, retries, example traces) and
``alert_states``; this class owns the connection and hands each of them a ``fetch``.
It is long because it implements the whole ``Store`` protocol, one short delegating
method per operation.

Fleet views (RED, percentiles, the service map) read the rollups the writer keeps
(``rollups.py``), and trace search and journey lists its trace summaries
(``summaries.py``, ``summary_reads.py``); the same answers by scanning spans stay
available as ``scan`` (benchmarks and the consistency tests compare the two). A store opened with
``rollups=False`` keeps none and answers by scan: the baseline ingest is measured
against (its rollup tables exist but go stale, so such a file is for benchmarks).

DuckDB 2.0 blocks the next ``execute`` on a connection while a previous result has
rows left unread, so reads always ``fetchall()`` and never share a cursor.

``compact`` rewrites the file (see ``compaction.py``), which needs the connection to
itself: it waits for the reads and deletes in flight, holds new ones back, and keeps
the writes that arrive meanwhile (as many as the write queue holds) to hand them to
the writer of the new file. Every use of the connection therefore passes the gate
(``_gate``), a condition counting the uses in flight.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, Final, ParamSpec, TypeVar

import duckdb

from threadline.etags import body_etag
from threadline.server.aggregates import (
    CappedService,
    OperationRed,
    PropagationFindings,
    ServiceMap,
    ServiceRed,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.alerting.state import AlertRecord
from threadline.server.analysis.burn import Counts
from threadline.server.analysis.funnel import StepMatch
from threadline.server.batch import SpanBatch
from threadline.server.drills.record import DrillResult
from threadline.server.journey_model import (
    FunnelReach,
    JourneyAttribute,
    JourneyTrace,
    StepStats,
    Transition,
)
from threadline.server.log_batch import LogBatch, LogQuery, LogRecord
from threadline.server.metric_rows import MetricRows, SlotExemplar
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanRecord,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)
from threadline.server.sdk_telemetry import SdkStats
from threadline.server.slo_queries import ExampleRow, IndicatorQuery, RetryCounts
from threadline.server.storage.base import (
    IdColumn,
    JourneyOrder,
    StaleDocument,
    StoredDocument,
    StoreError,
    StoreHealth,
    StoreOverloaded,
    UserErasure,
)
from threadline.server.storage.duckdb import (
    alert_states,
    compaction,
    deletion,
    documents,
    drill_results,
    exemplars,
    funnel_reads,
    group_rollups,
    groups,
    health_rollups,
    journey_attributes,
    journey_lists,
    journey_reads,
    logs,
    metric_reads,
    migrations,
    propagation_reads,
    rollup_reads,
    rollups,
    search,
    slo_reads,
    summaries,
    summary_reads,
    trace_reads,
)
from threadline.server.storage.duckdb import sdk_stats as sdk_stats_queries
from threadline.server.storage.duckdb.resource_keys import ResourceKeys
from threadline.server.storage.duckdb.scan import ScanViews
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import USER_TRAFFIC, Fetch, Row, starts_in
from threadline.server.storage.duckdb.writer import GroupCommitWriter

# How long close waits for reads under way before closing the connection anyway.
CLOSE_WAIT_S: Final = 30.0

# How much write-ahead log DuckDB gathers before it checkpoints (its default is 16 MB).
# The checkpoint runs inside the commit that crosses the bound, on the writer's thread,
# and takes about as long whatever the log holds (it rewrites the touched row groups,
# the indexes and the metadata): at 16 MB, with rollups, the writer spent most of its
# time checkpointing. 256 MB is about 350,000 spans with their rollups; a crash leaves
# at most that much log, which the next open replays (see ``docs/operating.md``). The
# writer also checkpoints after each fold (``writer.GroupCommitWriter._checkpoint``).
CHECKPOINT_THRESHOLD: Final = "256MB"

_P = ParamSpec("_P")
_T = TypeVar("_T")


class DuckDBStore:
    """A ``Store`` in one DuckDB file; opening creates the schema, or upgrades an older
    file's in place (see ``migrations``), and refuses a file from a newer release.

    Each method keeps the contract written on ``Store`` and at the top of
    ``threadline.server.storage.base``; the notes here say only how DuckDB does it.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_pending_batches: int = 256,
        rollups: bool = True,
        threads: int = 0,
    ) -> None:
        """``threads``: DuckDB's query threads, for the writer and reads alike (DuckDB
        has one setting per database); 0 leaves its default, one per core."""
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        if threads < 0:
            raise ValueError(f"threads must be 0 (one per core) or more, got {threads}")
        self._path = path
        self._max_pending = max_pending_batches
        self._rollups = rollups
        self._threads = threads
        self.scan = ScanViews(self._fetch)
        compaction.prepare_directory(path)
        self._connection = _open(path, threads)
        # Only once the file is ours: another process's compaction copy is not.
        compaction.discard_leftovers(path)
        self._gate = threading.Condition()  # guards the fields below
        self._closed = False
        self._compacting = False
        self._in_flight = 0  # reads and deletes using the connection now
        self._held: list[tuple[SpanBatch | LogBatch, Future[None]]] = []  # writes during compaction
        self._earlier_commits = 0  # by the writers of files compaction replaced
        self._resource_keys = self._read(ResourceKeys.stored)
        self._writer = self._new_writer()

    @property
    def commits(self) -> int:
        """Write transactions committed since opening; concurrent writes share them."""
        return self._earlier_commits + self._writer.commits

    def write(self, batch: SpanBatch) -> Future[None]:
        return self._submit(batch)

    def write_logs(self, batch: LogBatch) -> Future[None]:
        return self._submit(batch)

    def logs(self, query: LogQuery) -> list[LogRecord]:
        return self._read(logs.select, query)

    def _submit(self, batch: SpanBatch | LogBatch) -> Future[None]:
        if len(batch) == 0:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        with self._gate:
            if self._closed:
                raise StoreError("the store is closed; it accepts no more writes")
            if not self._compacting:
                return self._writer.submit(batch)
            if len(self._held) >= self._max_pending:
                raise StoreOverloaded(
                    f"the store is being compacted and {self._max_pending} batches are waiting"
                )
            held: Future[None] = Future()
            self._held.append((batch, held))
            return held

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        return self._read(trace_reads.trace, trace_id)

    def get_traces(self, trace_ids: Sequence[str]) -> list[SpanRecord]:
        return self._read(trace_reads.traces, trace_ids, summarised=self._rollups)

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        if not self._rollups:
            return self.scan.search_traces(query)
        return self._read(summary_reads.search_traces, query, self._resource_keys)

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        read = summary_reads.journey_traces if self._rollups else search.journey_traces
        return self._read(read, session_id=session_id, user_id=user_id, limit=limit)

    def ids_with_prefix(self, column: IdColumn, prefix: str, *, limit: int) -> list[str]:
        if column == "session_id" and self._rollups:
            return self._read(summary_reads.session_ids_with_prefix, prefix, limit=limit)
        return self._read(search.ids_with_prefix, column, prefix, limit=limit)

    def list_journeys(
        self,
        *,
        order: JourneyOrder = "recent",
        limit: int = 20,
        failed: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[JourneySummary]:
        if not self._rollups:
            return self.scan.list_journeys(
                order=order, limit=limit, failed=failed, start_ns=start_ns, end_ns=end_ns
            )
        return self._read(
            journey_lists.list_journeys,
            order=order,
            limit=limit,
            failed=failed,
            start_ns=start_ns,
            end_ns=end_ns,
        )

    def journey_map(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
    ) -> tuple[list[StepStats], list[Transition]]:
        self._need_summaries("journey maps")
        return self._read(journey_reads.journey_map, window, service, attribute)

    def step_traces(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        funnel: Sequence[StepMatch] = (),
        attribute: tuple[str, str] | None = None,
        sessions: Sequence[str] | None = None,
    ) -> tuple[list[JourneyTrace], bool]:
        self._need_summaries("funnels")
        if funnel:
            return self._read(
                funnel_reads.funnel_journeys, window, funnel, service, attribute, sessions
            )
        return self._read(journey_reads.journeys, window, service, attribute, sessions)

    def funnel_reach(
        self,
        window: TimeWindow,
        steps: Sequence[StepMatch],
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
        sample: int = 0,
    ) -> FunnelReach:
        self._need_summaries("funnels")
        return self._read(funnel_reads.funnel_reach, window, steps, service, attribute, sample)

    def journey_attributes(
        self,
        samples: Sequence[tuple[Sequence[str], Sequence[str]]],
        start_ns: int,
        end_ns: int,
        *,
        skip_keys: Sequence[str] = (),
        min_support: int = 3,
        limit: int = 200,
    ) -> list[list[JourneyAttribute]]:
        return self._read(
            journey_attributes.journey_attributes,
            samples,
            start_ns,
            end_ns,
            skip_keys=skip_keys,
            min_support=min_support,
            limit=limit,
        )

    def _need_summaries(self, what: str) -> None:
        if not self._rollups:
            raise StoreError(f"{what} read the journey steps, which a store without rollups lacks")

    def services(self) -> list[ServiceOperations]:
        rows = self._fetch(
            f"SELECT service_name, list(DISTINCT name ORDER BY name) FILTER (WHERE {USER_TRAFFIC})"
            f" FROM {TABLE} GROUP BY service_name ORDER BY service_name",
            [],
        )
        return [ServiceOperations(service=row[0], operations=tuple(row[1] or ())) for row in rows]

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
        return self._read(rollup_reads.operation_red, window, service)

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
        return self._read(rollup_reads.service_red, service, window, operation, bucket_ns)

    def service_map(self, window: TimeWindow) -> ServiceMap:
        if not self._rollups:
            return self.scan.service_map(window)
        return self._read(rollup_reads.service_map, window)

    def capped_services(self) -> list[CappedService]:
        if not self._rollups:
            return []  # answered by scan: every name is its own operation
        return [
            CappedService(service=row[0], kept_operations=int(row[1]))
            for row in self._fetch(
                f"SELECT service, count(*) FROM {rollups.NAMES} GROUP BY service"
                " HAVING count(*) >= ? ORDER BY service",
                [rollups.OPERATION_CAP],
            )
        ]

    def metric_rows(self, first_minute: int, last_minute: int) -> MetricRows:
        return self._read(metric_reads.metric_rows, first_minute, last_minute)

    def exemplars(self, first_minute: int, last_minute: int) -> list[SlotExemplar]:
        return self._read(exemplars.latest, first_minute, last_minute)

    def sdk_stats(self, service: str, window: TimeWindow) -> SdkStats:
        if not self._rollups:
            return self.scan.sdk_stats(service, window)
        return self._read(sdk_stats_queries.rolled_up, service, window)

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
        sample: int = 2000,
        sample_ids: int = 0,
    ) -> TraceGroups:
        labels = (
            self._read(
                group_rollups.labels,
                target,
                split,
                window,
                percentile=percentile,
                examples=examples,
            )
            if self._rollups
            else None
        )
        if labels is None:
            return self.scan.trace_groups(
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
        return self._read(
            groups.trace_groups,
            target,
            split,
            window,
            labels=labels,
            min_support=min_support,
            max_attributes=max_attributes,
            sample=sample,
            sample_ids=sample_ids,
            span_ranges=summary_reads.span_ranges,
        )

    def propagation(self, window: TimeWindow) -> PropagationFindings:
        if not self._rollups:
            return self.scan.propagation(window)
        return self._read(propagation_reads.propagation, window)

    def slo_counts(
        self, query: IndicatorQuery, end_ns: int, windows_ns: Sequence[int]
    ) -> list[Counts]:
        return self._read(slo_reads.slo_counts, query, end_ns, windows_ns)

    def slo_series(
        self, query: IndicatorQuery, end_ns: int, step_ns: int, steps: int
    ) -> list[Counts]:
        return self._read(slo_reads.slo_series, query, end_ns, step_ns, steps)

    def retry_counts(
        self, caller: str, callee: str, end_ns: int, windows_ns: Sequence[int]
    ) -> list[RetryCounts]:
        return self._read(slo_reads.retry_counts, caller, callee, end_ns, windows_ns)

    def slo_examples(
        self, query: IndicatorQuery, window: TimeWindow, *, limit: int = 5
    ) -> list[ExampleRow]:
        return self._read(slo_reads.slo_examples, query, window, limit)

    def alert_states(self) -> list[AlertRecord]:
        return self._read(alert_states.load)

    def save_alert_states(
        self, records: Sequence[AlertRecord], *, forget: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._on_writer(lambda run: alert_states.save(run, records, forget), "saving alerts")

    def document(self, name: str) -> StoredDocument | None:
        return self._read(documents.load, name)

    def save_document(self, name: str, body: str, *, if_match: str | None) -> str:
        saved = self._on_writer(
            lambda run: documents.save(run, name, body, if_match), f"saving {name}"
        )
        if saved == documents.STALE:
            raise StaleDocument(f"{name} changed since it was read")
        return body_etag(body)

    def save_drill_result(self, result: DrillResult, *, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self._on_writer(lambda run: drill_results.save(run, result, keep), "saving a drill result")

    def drill_results(
        self, probe: str | None = None, *, limit: int = 50, failed: bool | None = None
    ) -> list[DrillResult]:
        return self._read(drill_results.load, probe, limit, failed)

    # Deletions that change the rollups run on the writer, in one transaction with
    # the rollup subtraction, so spans and rollups never disagree.

    def delete_traces(self, trace_ids: Sequence[str]) -> int:
        if not trace_ids:
            return 0

        def delete(run: rollups.Run) -> int:
            # Where the traces' spans start, from their summaries: every delete below
            # then reads that range, not the whole of its table.
            span = summaries.traces_span(run, trace_ids) if self._rollups else None
            within = None if span is None else starts_in([span])
            if self._rollups:
                # Before ``rollups``: it may drop names these rows are counted under.
                health_rollups.forget_traces(run, trace_ids, within=within)
                rollups.forget_traces(run, trace_ids, within=within)
                summaries.forget_traces(run, trace_ids, within)
            return deletion.delete_traces(run, trace_ids, within)

        return self._on_writer(delete, "deleting spans")

    def compact_rollups(self) -> None:
        """Fold the rollup deltas and trace summary rows now, then checkpoint, as the
        writer does every so many commits: reads after it find the store as the
        writer's own folds leave it."""
        if self._rollups:
            with self._using_connection():
                try:
                    self._writer.fold(raise_failure=True).result()
                except duckdb.Error as exc:
                    raise StoreError(f"folding rollups failed: {exc}") from exc

    def fold_pending(self) -> None:
        """Fold what arrived since the last fold, when anything did: reads of journey
        SLOs then take their folded path (``journey_sessions.counts``) instead of
        counting the unfolded traces' sessions again."""
        if self._rollups and summaries.any_fresh(self._fetch):
            with self._using_connection():
                self._writer.fold().result()

    def delete_older_than(self, cutoff_ns: int) -> int:
        # Retention asks often and usually finds nothing: answer that from a read
        # (zone maps make it cheap) instead of taking a turn on the writer.
        if not self._fetch(
            f"SELECT 1 FROM {TABLE} WHERE start_ns < ? LIMIT 1", [cutoff_ns]
        ) and not logs.any_older_than(self._fetch, cutoff_ns):
            return 0

        def delete(run: rollups.Run) -> int:
            if self._rollups:
                health_rollups.forget_before(run, cutoff_ns)
                rollups.forget_before(run, cutoff_ns)
                summaries.forget_before(run, cutoff_ns)
            logs.delete_older_than(run, cutoff_ns)
            return deletion.delete_older_than(run, cutoff_ns)

        return self._on_writer(delete, "deleting spans")

    def erase_user(self, forms: Sequence[str]) -> UserErasure:
        found = deletion.spans_per_form(self._fetch, forms)

        def erase(run: rollups.Run) -> int:
            # The user's journeys' traces (``deletion.user_trace_ids``), deleted whole.
            doomed = deletion.user_trace_ids(run, forms)
            if self._rollups:
                health_rollups.forget_traces(run, doomed, erasing=True)
                rollups.forget_traces(run, doomed, erasing=True)
                summaries.forget_traces(run, doomed)
            # Before the spans: the logs of the user's sessions are found through them.
            deletion.erase_user_logs(run, forms, doomed)
            return deletion.delete_traces(run, doomed)

        erased = self._on_writer(erase, "erasing a user") if forms else 0
        # Always rewritten, even when nothing matched now: spans of the user deleted
        # earlier (by retention, say) may still sit in freed blocks.
        self.compact()
        return UserErasure(
            erased_spans=erased, spans_per_form=tuple((form, found[form]) for form in forms)
        )

    def start_ns_quantile(self, fraction: float) -> int | None:
        return deletion.start_ns_quantile(self._fetch, fraction)

    def size_bytes(self) -> int:
        # Measured on the writer between two writes, where its checkpoint always runs:
        # beside a write in flight it cannot, and the size would count the log as well
        # (up to CHECKPOINT_THRESHOLD), so a size cap would delete more than it needs.
        with self._using_connection():
            try:
                return self._writer.between_writes(
                    lambda connection: deletion.used_bytes(connection, self._path)
                ).result()
            except duckdb.Error as exc:
                raise StoreError(f"measuring the store failed: {exc}") from exc

    def compact(self) -> None:
        with self._gate:
            while self._compacting:
                self._gate.wait()
            if self._closed:
                raise StoreError("the store is closed")
            self._compacting = True
            while self._in_flight:
                self._gate.wait()
        failure: BaseException | None = None
        try:
            self._writer.close()  # commits every batch accepted before the gate closed
            self._rewrite()
        except BaseException as exc:
            failure = exc
        finally:
            self._resume()
        if isinstance(failure, duckdb.Error | OSError):
            raise StoreError(f"compacting the store failed: {failure}") from failure
        if failure is not None:
            raise failure

    def _rewrite(self) -> None:
        copy = compaction.copy_live_rows(self._connection, self._path)
        self._connection.close()
        try:
            compaction.swap_in(copy, self._path)
        finally:
            # The old file if the swap failed, the new one if it worked.
            self._connection = _open(self._path, self._threads)

    def _resume(self) -> None:
        """After compacting: a writer on the (new) connection takes the held writes."""
        try:
            writer = self._new_writer()
        except (duckdb.Error, StoreError) as exc:
            # The file could not be opened again: the store is unusable, and says so
            # (health, every call) rather than leaving callers waiting at the gate.
            with self._gate:
                self._closed = True
                self._compacting = False
                held, self._held = self._held, []
                self._gate.notify_all()
            for _, future in held:
                future.set_exception(StoreError(f"the store could not be reopened: {exc}"))
            raise StoreError(f"the store could not be reopened after compacting: {exc}") from exc
        with self._gate:
            self._earlier_commits += self._writer.commits
            self._writer = writer
            self._compacting = False
            held, self._held = self._held, []
            self._gate.notify_all()
        for batch, future in held:
            try:
                _forward(writer.submit(batch), future)
            except StoreError as exc:
                future.set_exception(exc)

    def health(self) -> StoreHealth:
        problem = ""
        compacting = self._compacting
        if self._closed:
            problem = "the store is closed"
        elif not compacting and not self._writer.running:
            problem = "the writer thread has stopped"
        elif not os.access(self._path, os.W_OK):
            problem = f"{self._path} is not writable by this process"
        return StoreHealth(
            writable=not problem,
            pending_batches=len(self._held) if compacting else self._writer.pending,
            max_pending_batches=self._max_pending,
            problem=problem,
            unfolded_commits=self._writer.unfolded_commits,
        )

    def close(self) -> None:
        with self._gate:
            while self._compacting:
                self._gate.wait()
            if self._closed:
                return
            self._closed = True
            self._gate.notify_all()
            # Reads already under way finish first: DuckDB refuses to close a
            # connection busy making a cursor. New ones are refused (closed).
            deadline = time.monotonic() + CLOSE_WAIT_S
            while self._in_flight and time.monotonic() < deadline:
                self._gate.wait(deadline - time.monotonic())
        try:
            self._writer.close()
        finally:
            self._connection.close()
            compaction.private_files(self._path)

    def _new_writer(self) -> GroupCommitWriter:
        return GroupCommitWriter(
            self._connection.cursor(),
            max_pending_batches=self._max_pending,
            resource_keys=self._resource_keys,
            maintain_rollups=self._rollups,
        )

    @contextmanager
    def _using_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, counted in flight; waits while a compaction runs."""
        with self._gate:
            while self._compacting and not self._closed:
                self._gate.wait()
            if self._closed:
                raise StoreError("the store is closed")
            self._in_flight += 1
        try:
            yield self._connection
        finally:
            with self._gate:
                self._in_flight -= 1
                self._gate.notify_all()

    def _on_writer(self, task: Callable[[rollups.Run], int], doing: str) -> int:
        """``task`` in a transaction of its own on the writer (counted in flight, so a
        compaction waits for it and it waits for a compaction)."""
        with self._using_connection():
            try:
                return int(self._writer.run(task).result())
            except StoreError as exc:
                raise StoreError(f"{doing} failed: {exc}") from exc

    def _fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        return self._run(sql, params, "reading spans")

    def _read(
        self, read: Callable[Concatenate[Fetch, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``read``'s answer, its statements all reading one snapshot of the store.

        Many reads probe first (are there unfolded summaries? kept minutes after the
        end?) and then read what the probe chose; a fold committing between two
        statements on cursors of their own would leave rows counted by neither (or
        both). One transaction for the whole read keeps them consistent; the writer
        commits meanwhile as usual (DuckDB's MVCC never blocks it)."""
        with self._using_connection() as connection:
            cursor = connection.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")

                return read(
                    lambda sql, params: _all_rows(cursor, sql, params, "reading spans"),
                    *args,
                    **kwargs,
                )
            finally:
                cursor.close()  # ends the read's transaction (nothing to commit)

    def _run(self, sql: str, params: Sequence[object], doing: str) -> list[Row]:
        """Every row of ``sql``, on a cursor of its own; ``doing`` names the work in errors."""
        with self._using_connection() as connection:
            cursor = connection.cursor()
            try:
                return _all_rows(cursor, sql, params, doing)
            finally:
                cursor.close()


def _all_rows(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object], doing: str
) -> list[Row]:
    """Every row of ``sql``; ``doing`` names the work in errors."""
    try:
        return cursor.execute(sql, params).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"{doing} failed: {exc}") from exc


def _open(path: Path, threads: int) -> duckdb.DuckDBPyConnection:
    """A connection to the store at ``path``, its schema created, or upgraded in place
    (see ``migrations``); a file from a newer release is refused. ``threads`` > 0 sets
    DuckDB's query threads."""
    try:
        connection = duckdb.connect(str(path))
        # DuckDB draws a progress bar on stdout for queries over ~2 s; a server's stdout
        # is its log, and a long upgrade step or scan must not write into it.
        connection.execute("SET enable_progress_bar = false")
        connection.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        if threads:
            # A commit's statements barely run in parallel: a second thread costs the
            # writer CPU that decoding workers on the same cores could use.
            connection.execute(f"SET threads = {int(threads)}")
    except duckdb.Error as exc:
        raise StoreError(f"cannot open the span store at {path}: {exc}") from exc
    try:
        migrations.open_schema(connection, path)
    except duckdb.Error as exc:
        connection.close()
        raise StoreError(f"cannot create the span table in {path}: {exc}") from exc
    except StoreError:
        connection.close()
        raise
    compaction.private_files(path)
    return connection


def _forward(source: Future[None], target: Future[None]) -> None:
    """Settle ``target`` as ``source`` settles."""

    def settle(done: Future[None]) -> None:
        exc = done.exception()
        if exc is None:
            target.set_result(None)
        else:
            target.set_exception(exc)

    source.add_done_callback(settle)
