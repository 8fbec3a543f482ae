"""``ClickHouseStore``: the ``Store`` on ClickHouse, a server (``clickhouse://``) or
the engine embedded in this process (``chdb://``), through one client API.

Writes go through one writer thread that groups queued batches into synchronous
inserts (``writer.py`` says why synchronous); reads run on the caller's thread.
Tables and their shape: ``schema.py``; replicated, sharded DDL: ``cluster.py``.

The whole contract: writing spans and logs, traces by id, trace search, journey traces
and lists, ids by prefix, services, counts, logs, deletion (traces, retention,
erasure), compaction, size, health, alert state, drill results, the kept documents,
the SDKs' reports, the fleet rollups (RED, the service map, the operation cap,
``/metrics`` rows and exemplars: ``rollup_schema``, ``rollups``, ``rollup_reads``),
journey maps and funnels (from ``journey_steps``, kept by a materialized view), and
from the rollups of ``rollup_tables`` (materialized views and the writer's pair
count, ``pair_rollups``): trace groups (``groups``, ``group_counts``), propagation
health (``health_reads``) and the SLO reads (``slo_reads``; the burn-rate series as
one of those reads per window).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Final

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
    StoredDocument,
    StoreError,
    StoreHealth,
    UserErasure,
)
from threadline.server.storage.clickhouse import (
    alert_states,
    deletion,
    documents,
    drill_results,
    funnel_reads,
    group_counts,
    health_reads,
    journey_attributes,
    journey_origins,
    journey_reads,
    logs,
    rollup_reads,
    rollup_schema,
    rollup_tables,
    rollups,
    schema,
    sdk_stats,
    search,
    slo_reads,
    traces,
    versions,
)
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.tables import Row, Tables
from threadline.server.storage.clickhouse.writer import InsertWriter
from threadline.store_url import StoreUrl

# The Store methods this backend does not offer yet, for docs and the contract suite.
NOT_YET: Final[tuple[str, ...]] = ()


class ClickHouseStore:
    """A ``Store`` in a ClickHouse database; opening creates the schema where missing
    and refuses a database from a newer release (``versions``)."""

    def __init__(
        self, url: StoreUrl, *, max_pending_batches: int = 256, ttl_days: int | None = None
    ) -> None:
        if url.backend not in ("chdb", "clickhouse"):
            raise ValueError(f"a ClickHouse store needs a chdb:// or clickhouse:// URL, not {url}")
        self._url = url
        self._max_pending = max_pending_batches
        self._connection = Connection(url)
        self._tables = Tables.of(self._connection.database, url.cluster)
        try:
            self.schema_version = versions.open_schema(
                self._connection, self._tables, ttl_days=ttl_days
            )
            # Idle after a burst, the writer names the error origins of the traces
            # that failed in it (what DuckDB's fold does), so funnels can weigh them.
            # Its statements go straight to the connection, which ``close`` keeps open
            # until the writer has stopped: work under way when the store starts to
            # close then finishes instead of failing on the closed store.
            self._writer = InsertWriter(
                self._connection,
                self._tables,
                max_pending_batches=max_pending_batches,
                on_idle=lambda: journey_origins.set_origins(
                    self._idle_fetch, self._idle_command, self._tables
                ),
            )
        except BaseException:
            self._connection.close()
            raise
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> StoreUrl:
        return self._url

    # Writes ---------------------------------------------------------------------------

    def write(self, batch: SpanBatch) -> Future[None]:
        return self._submit(batch)

    def write_logs(self, batch: LogBatch) -> Future[None]:
        return self._submit(batch)

    def _submit(self, batch: SpanBatch | LogBatch) -> Future[None]:
        if len(batch) == 0:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        if self._closed:
            raise StoreError("the store is closed; it accepts no more writes")
        return self._writer.submit(batch)

    # Reads ----------------------------------------------------------------------------

    def logs(self, query: LogQuery) -> list[LogRecord]:
        return logs.select(self._fetch, self._tables, query)

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        return traces.get_traces(self._fetch, self._tables, [trace_id])

    def get_traces(self, trace_ids: Sequence[str]) -> list[SpanRecord]:
        return traces.get_traces(self._fetch, self._tables, trace_ids)

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        return search.search_traces(self._fetch, self._tables, query)

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        return search.journey_traces(
            self._fetch, self._tables, session_id=session_id, user_id=user_id, limit=limit
        )

    def ids_with_prefix(self, column: IdColumn, prefix: str, *, limit: int) -> list[str]:
        return search.ids_with_prefix(self._fetch, self._tables, column, prefix, limit=limit)

    def list_journeys(
        self,
        *,
        order: JourneyOrder = "recent",
        limit: int = 20,
        failed: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[JourneySummary]:
        return search.list_journeys(
            self._fetch,
            self._tables,
            order=order,
            limit=limit,
            failed=failed,
            start_ns=start_ns,
            end_ns=end_ns,
        )

    def services(self) -> list[ServiceOperations]:
        return traces.services(self._fetch, self._tables)

    def counts(self) -> StoreCounts:
        return traces.counts(self._fetch, self._tables)

    def has_service(self, service: str) -> bool:
        return traces.has_service(self._fetch, self._tables, service)

    # Journey steps (``journey_steps`` table, kept by a materialized view) -------------

    def journey_map(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
    ) -> tuple[list[StepStats], list[Transition]]:
        return journey_reads.journey_map(self._fetch, self._tables, window, service, attribute)

    def step_traces(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        funnel: Sequence[StepMatch] = (),
        attribute: tuple[str, str] | None = None,
        sessions: Sequence[str] | None = None,
    ) -> tuple[list[JourneyTrace], bool]:
        return journey_reads.journeys(
            self._fetch, self._tables, window, service, funnel, attribute, sessions
        )

    def funnel_reach(
        self,
        window: TimeWindow,
        steps: Sequence[StepMatch],
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
        sample: int = 0,
    ) -> FunnelReach:
        return funnel_reads.funnel_reach(
            self._fetch, self._tables, window, steps, service, attribute, sample
        )

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
        return journey_attributes.journey_attributes(
            self._fetch,
            self._tables,
            samples,
            start_ns,
            end_ns,
            skip_keys=skip_keys,
            min_support=min_support,
            limit=limit,
        )

    # Fleet views, from the rollups -------------------------------------------------------

    def operation_red(
        self, window: TimeWindow, *, service: str | None = None
    ) -> list[OperationRed]:
        return rollup_reads.operation_red(self._fetch, self._tables, window, service)

    def service_red(
        self,
        service: str,
        window: TimeWindow,
        *,
        operation: str | None = None,
        bucket_ns: int | None = None,
    ) -> ServiceRed:
        return rollup_reads.service_red(
            self._fetch, self._tables, service, window, operation, bucket_ns
        )

    def service_map(self, window: TimeWindow) -> ServiceMap:
        return rollup_reads.service_map(self._fetch, self._tables, window)

    def capped_services(self) -> list[CappedService]:
        return rollup_reads.capped_services(self._fetch, self._tables)

    def metric_rows(self, first_minute: int, last_minute: int) -> MetricRows:
        return rollup_reads.metric_rows(self._fetch, self._tables, first_minute, last_minute)

    def exemplars(self, first_minute: int, last_minute: int) -> list[SlotExemplar]:
        return rollup_reads.exemplars(self._fetch, self._tables, first_minute, last_minute)

    def sdk_stats(self, service: str, window: TimeWindow) -> SdkStats:
        # Read from the spans: their sort key starts with service and span name.
        return sdk_stats.sdk_stats(self._fetch, self._tables, service, window)

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
        return group_counts.trace_groups(
            self._fetch,
            self._tables,
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
        return health_reads.propagation(self._fetch, self._tables, window)

    def slo_counts(
        self, query: IndicatorQuery, end_ns: int, windows_ns: Sequence[int]
    ) -> list[Counts]:
        return slo_reads.slo_counts(self._fetch, self._tables, query, end_ns, windows_ns)

    def slo_series(
        self, query: IndicatorQuery, end_ns: int, step_ns: int, steps: int
    ) -> list[Counts]:
        # One rollup read per window: the page asks for ~84 (72 hours, 12 six-hour
        # windows), each reading the minutes of its own window only.
        return [
            self.slo_counts(query, end_ns - step * step_ns, [step_ns])[0] for step in range(steps)
        ]

    def retry_counts(
        self, caller: str, callee: str, end_ns: int, windows_ns: Sequence[int]
    ) -> list[RetryCounts]:
        return slo_reads.retry_counts(self._fetch, self._tables, caller, callee, end_ns, windows_ns)

    def slo_examples(
        self, query: IndicatorQuery, window: TimeWindow, *, limit: int = 5
    ) -> list[ExampleRow]:
        return slo_reads.slo_examples(self._fetch, self._tables, query, window, limit)

    # Drill results -----------------------------------------------------------------------

    def save_drill_result(self, result: DrillResult, *, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if self._closed:
            raise StoreError("the store is closed")
        drill_results.save(self._connection, self._tables, result, keep)

    def drill_results(
        self, probe: str | None = None, *, limit: int = 50, failed: bool | None = None
    ) -> list[DrillResult]:
        return drill_results.load(self._fetch, self._tables, probe, limit, failed)

    # Kept documents --------------------------------------------------------------------

    def document(self, name: str) -> StoredDocument | None:
        return documents.load(self._fetch, self._tables, name)

    def save_document(self, name: str, body: str, *, if_match: str | None) -> str:
        if self._closed:
            raise StoreError("the store is closed")
        return documents.save(self._connection, self._tables, name, body, if_match)

    # Alert state -----------------------------------------------------------------------

    def alert_states(self) -> list[AlertRecord]:
        return alert_states.load(self._fetch, self._tables)

    def save_alert_states(
        self, records: Sequence[AlertRecord], *, forget: Sequence[tuple[str, str]] = ()
    ) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        alert_states.save(self._connection, records, forget)

    # Deletion ---------------------------------------------------------------------------

    # Deletions take the writer's turn: they subtract from the rollups what a batch's
    # insert and pair count add, and must not fall between the two.

    def delete_traces(self, trace_ids: Sequence[str]) -> int:
        with self._writer.turn:
            return deletion.delete_traces(self._fetch, self._command, self._tables, trace_ids)

    def delete_older_than(self, cutoff_ns: int) -> int:
        with self._writer.turn:
            return deletion.delete_older_than(self._fetch, self._command, self._tables, cutoff_ns)

    def erase_user(self, forms: Sequence[str]) -> UserErasure:
        found = deletion.spans_per_form(self._fetch, self._tables, forms)
        doomed = deletion.user_trace_ids(self._fetch, self._tables, forms)
        names = rollups.names_of(self._fetch, self._tables, doomed)
        # Before the spans: the logs of the user's sessions are found through them.
        deletion.erase_user_logs(self._fetch, self._command, self._tables, forms, doomed)
        with self._writer.turn:
            erased = deletion.delete_traces(self._fetch, self._command, self._tables, doomed)
            # A span name may carry what the user did: names no other span has go too.
            rollups.forget_names(self._fetch, self._command, self._tables, names)
        # Always merged, even when nothing matched now: rows of the user deleted
        # earlier may still sit masked in parts. The rollups too: the trace summaries
        # hold session ids, and the subtracted rows fold away.
        self.compact()
        self.compact_rollups()
        return UserErasure(
            erased_spans=erased, spans_per_form=tuple((form, found[form]) for form in forms)
        )

    def start_ns_quantile(self, fraction: float) -> int | None:
        return deletion.start_ns_quantile(self._fetch, self._tables, fraction)

    def size_bytes(self) -> int:
        return deletion.size_bytes(self._fetch, self._tables)

    def fold_pending(self) -> None:
        """Nothing to fold: reads merge the parts they find, and ClickHouse merges
        them in the background."""

    def compact_rollups(self) -> None:
        """Merge the rollup tables' and journey steps' parts now: each key's deltas
        become one row, zero sums go. Reads never need it (they sum or merge a key's
        rows themselves); ClickHouse merges in the background anyway. Failed traces'
        steps get their error origin first, as DuckDB's fold gives it."""
        journey_origins.set_origins(self._fetch, self._command, self._tables)
        for table in (schema.JOURNEY_STEPS, *rollup_tables.DATA_TABLES, *rollup_schema.MERGED):
            self._command(f"OPTIMIZE TABLE {self._tables.parts_of(table)} FINAL", {})

    def compact(self) -> None:
        """Merge every partition's parts into one, purging rows deleted so far."""
        tables = {*schema.DATA_TABLES, *rollup_schema.MERGED, *rollup_tables.DATA_TABLES}
        for table in sorted(tables):
            self._command(f"OPTIMIZE TABLE {self._tables.parts_of(table)} FINAL", {})

    def health(self) -> StoreHealth:
        problem = ""
        if self._closed:
            problem = "the store is closed"
        elif not self._writer.running:
            problem = "the writer thread has stopped"
        return StoreHealth(
            writable=not problem,
            pending_batches=self._writer.pending,
            max_pending_batches=self._max_pending,
            problem=problem,
            unfolded_commits=self._writer.unnamed_inserts,
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

    def _fetch(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        if self._closed:
            raise StoreError("the store is closed")
        return self._connection.rows(sql, params, doing="reading spans")

    def _idle_fetch(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        return self._connection.rows(sql, params, doing="naming error origins")

    def _idle_command(self, sql: str, params: Mapping[str, object]) -> None:
        self._connection.command(sql, params, doing="naming error origins")

    def _command(self, sql: str, params: Mapping[str, object]) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        self._connection.command(sql, params, doing="deleting spans")
