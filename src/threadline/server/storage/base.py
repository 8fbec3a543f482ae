"""The storage contract every backend implements and the contract suite checks.

The module is long because it is the one place the contract is written down: the
prose below and the ``Store`` protocol with a docstring per method, which every
backend and the contract suite read together; its value types live in ``model``,
``aggregates`` and ``journey_model``.

Contract, in prose (the suite in ``tests/server/storage`` holds every backend to it):

- **Ownership.** ``write`` takes a batch the caller no longer changes (batches are
  immutable). Records and summaries returned by queries are new values the caller
  owns.
- **Durability.** The future returned by ``write`` resolves only after the batch is
  durable: a process killed after that loses nothing. Writes that arrive close
  together may share one commit (group commit); each still resolves only after its
  own data is durable. On failure the future raises and none of the batch is kept.
- **Back-pressure.** ``write`` never blocks for long: when the store cannot accept
  more pending batches it raises ``StoreOverloaded`` at once, and the receiver
  answers 503 with ``Retry-After``.
- **Idempotence.** A span already stored (same ``trace_id``, ``span_id`` and start
  time), or repeated within one batch, is dropped at write: a re-sent batch is
  stored, and counted in every aggregate, once.
- **Rollups.** The fleet aggregates (``operation_red``, ``service_red``,
  ``service_map``) are kept at write time, per minute, in the same commit as the
  spans, and so are the counts of ``propagation`` and the split and group sizes of
  ``trace_groups``: they read whole minutes (a window is widened to the minutes it touches),
  their counts are exact, and their percentiles are within
  ``analysis.sketch.PROMISED_ERROR`` (2%) of the exact ones. A span is counted in
  the minute it started, whenever it arrives; a parent/child pair is an edge of the
  child's minute once both have arrived, in either order, if they started within
  the backend's pair horizon (15 minutes for DuckDB). Every deletion removes its
  spans from the aggregates in the same commit (retention drops whole minutes, so
  an edge whose caller aged out still counts in its callee's minute).
- **Trace summaries.** Trace search and journey lists read one summary per trace,
  kept at write time in the same commit as the spans: a later batch of a trace
  updates it (root found late, times widened, counts grown), a re-sent span
  counts once, and every deletion removes it (or, when retention cuts a trace,
  recounts it from the spans kept). They answer as a scan of the spans would.
- **Order.** ``get_trace`` returns spans ordered by start time; searches order as
  documented on each method.
- **Threads.** Every method may be called from any thread.
- **Documents.** The few documents people edit (sampling rules, SLOs, funnels,
  probes) are kept by name, each with a strong ETag that is a function of its body
  alone (``etags.body_etag``). ``save_document`` is a compare-and-set: given
  ``if_match``, it saves only if the stored document's ETag is that one
  (``NO_DOCUMENT``: only if none is stored), else raises ``StaleDocument`` and saves
  nothing. Every server process on the same database reads the same documents.
  The server's leases (``server.lease``: which process evaluates the SLOs) are
  documents too, taken and renewed with this compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final, Literal, Protocol

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

JourneyOrder = Literal["recent", "slowest"]
# The ids a person may give by a prefix (see ``Store.ids_with_prefix``).
IdColumn = Literal["trace_id", "session_id"]


class StoreError(Exception):
    """The store could not do what was asked."""


class StoreOverloaded(StoreError):
    """Too many writes are pending; try again later."""


class StaleDocument(StoreError):
    """A document's ``if_match`` did not name the stored version: it changed since it was
    read (the API answers 412 Precondition Failed)."""


# ``save_document``'s ``if_match`` for "only if no document of that name is stored".
NO_DOCUMENT: Final = ""


class StoreUnsupported(StoreError):
    """This backend does not offer the operation (yet); the API answers 501 with the message."""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What a readiness probe asks of a store: can it take writes now, and how full is its
    write queue. ``problem`` says what is wrong, for people, when ``writable`` is False.
    ``unfolded_commits`` counts writes whose deferred work has not run yet (DuckDB's fold,
    ClickHouse's naming of error origins when its writer is idle): until then reads show
    no error origin for their failed traces, and at 0 they do."""

    writable: bool
    pending_batches: int
    max_pending_batches: int
    problem: str = ""
    unfolded_commits: int = 0

    @property
    def saturated(self) -> bool:
        return self.pending_batches >= self.max_pending_batches


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A kept document's text and its strong ETag (``etags.body_etag(body)``)."""

    body: str
    etag: str


@dataclass(frozen=True, slots=True)
class UserErasure:
    """What erasing one user did: spans deleted, and how many spans carried each form
    of the user's id that was searched (before the deletion)."""

    erased_spans: int
    spans_per_form: tuple[tuple[str, int], ...]


class Store(Protocol):
    def write(self, batch: SpanBatch) -> Future[None]:
        """Queue ``batch``; the future resolves once it is durable (see contract)."""
        ...

    def write_logs(self, batch: LogBatch) -> Future[None]:
        """Append log records; the future resolves once they are durable (as ``write``).

        Log records have no identity, so a re-sent record is stored again. They share
        ``write``'s queue, bound and group commits.
        """
        ...

    def logs(self, query: LogQuery) -> list[LogRecord]:
        """The log records ``query`` selects, ordered by time (see ``LogQuery``)."""
        ...

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        """All spans of one trace ordered by start time; empty if unknown."""
        ...

    def get_traces(self, trace_ids: Sequence[str]) -> list[SpanRecord]:
        """All spans of the given traces, ordered by trace id, then start time."""
        ...

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Traces with at least one span matching every filter, in ``query.order``.

        ``service``/``operation``/``status`` must match one span together; each
        journey key and each attribute pair may be on any span of the trace; duration
        and time filters apply to the whole trace (first start to last end). Ties in
        the sort key are broken by trace id, so pages (``offset`` or ``after``) never
        repeat or skip a trace of an unchanged store.
        """
        ...

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        """Traces carrying the session (or user) id on any span, oldest first."""
        ...

    def ids_with_prefix(self, column: IdColumn, prefix: str, *, limit: int) -> list[str]:
        """Distinct stored ``trace_id`` or ``session_id`` values starting with ``prefix``.

        Sorted, at most ``limit``; what lets a person give an id by its first characters.
        """
        ...

    def list_journeys(
        self,
        *,
        order: JourneyOrder = "recent",
        limit: int = 20,
        failed: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[JourneySummary]:
        """Journeys (by session id), most recent first or slowest first.

        ``failed`` keeps only journeys with (``True``) or without (``False``) an error span.
        ``start_ns`` / ``end_ns`` keep the journeys' traces whose spans' start times
        reach into ``[start_ns, end_ns)`` (the first starts before ``end_ns``, the last
        at or after ``start_ns``): each journey is summarised over those traces (whole).
        """
        ...

    def journey_map(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
    ) -> tuple[list[StepStats], list[Transition]]:
        """The steps taken in ``window`` by journeys (sessions) and their transitions.

        A journey is chosen when it has a step starting in the window (and, with
        ``service``, a step touching that service; with ``attribute`` (key, value),
        a step in the window whose entry span carries that value, identity keys
        never matching); synthetic journeys never are.
        Read from journey steps kept at ingest, never from spans (docs/journeys.md).
        """
        ...

    def step_traces(
        self,
        window: TimeWindow,
        *,
        service: str | None = None,
        funnel: Sequence[StepMatch] = (),
        attribute: tuple[str, str] | None = None,
        sessions: Sequence[str] | None = None,
    ) -> tuple[list[JourneyTrace], bool]:
        """The traces of the window's chosen journeys, by session then start.

        ``funnel`` keeps the journeys entering that funnel in the window (taking its
        first step there; a ``StepMatch`` without a service: that operation in any
        service), each from the trace entering it to the trace completing it, or to
        its end when it stops before, the traces reaching a step and those that met
        an error: what ``analysis.funnel.progress`` walks and the drop-off comparison
        reads (``analysis.funnel.walked`` says which traces).
        ``service`` and
        ``attribute`` choose journeys as ``journey_map`` does; ``sessions``, when
        given, keeps only those sessions' journeys. The bool is True when a bound on
        the rows read was reached (the answer is partial).
        """
        ...

    def funnel_reach(
        self,
        window: TimeWindow,
        steps: Sequence[StepMatch],
        *,
        service: str | None = None,
        attribute: tuple[str, str] | None = None,
        sample: int = 0,
    ) -> FunnelReach:
        """Journeys reaching each funnel step and the times between steps, exact.

        Journeys are chosen as ``step_traces`` chooses them (``service``, ``attribute``)
        and counted as ``analysis.funnel.progress`` walks ``step_traces(first=steps[0])``:
        a journey enters with its first trace in the window that is ``steps[0]``,
        reaches step k with its first later trace (by start, then trace id) that is
        step k, and its traces are read to ``SESSION_GAP_NS`` past the window's end.
        Counted in the store, whatever the number of traces; ``sample`` asks for that
        many entering sessions at most (``FunnelReach.sample``).
        """
        ...

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
        """For each (stopped, went on) pair of trace id lists (one per drop-off), the
        attribute values on those traces (spans starting in [start_ns, end_ns]), each
        on at least ``min_support`` stopped traces, most first, at most ``limit`` per
        pair. Reads the spans of those traces only; ``skip_keys`` are never returned."""
        ...

    def services(self) -> list[ServiceOperations]:
        """Every service seen and its span names, sorted by name."""
        ...

    def counts(self) -> StoreCounts:
        """How many spans, traces and sessions are stored."""
        ...

    def has_service(self, service: str) -> bool:
        """Whether any span of ``service`` is stored."""
        ...

    # Aggregates (see ``threadline.server.aggregates`` for what each value means).
    # Windows select spans by start time, widened to whole minutes; counts are exact,
    # percentiles within 2% (see "Rollups" above).

    def operation_red(
        self, window: TimeWindow, *, service: str | None = None
    ) -> list[OperationRed]:
        """RED metrics of each (service, operation) of entry spans, sorted by both names."""
        ...

    def service_red(
        self,
        service: str,
        window: TimeWindow,
        *,
        operation: str | None = None,
        bucket_ns: int | None = None,
    ) -> ServiceRed:
        """RED metrics of one service's entry spans, per operation and per time bucket.

        With ``bucket_ns``, buckets are aligned to multiples of it since the epoch and
        the window must start and end on bucket boundaries. Buckets of whole minutes
        read the rollups; a finer bucket may cost a scan of the window's spans.
        """
        ...

    def service_map(self, window: TimeWindow) -> ServiceMap:
        """Caller → callee edges from parent/child span pairs whose child starts in ``window``."""
        ...

    def capped_services(self) -> list[CappedService]:
        """Services whose operation names reached the cap of the fleet aggregates, by name.

        A store bounds the distinct operations it aggregates per service; spans of
        later names count under ``aggregates.OTHER_OPERATION``. Empty when nothing
        reached the cap (or the store keeps every name).
        """
        ...

    def metric_rows(self, first_minute: int, last_minute: int) -> MetricRows:
        """The rollups of minutes ``[first_minute, last_minute)`` (minutes since the
        epoch) summed per service × operation and per edge, by ``/metrics`` latency
        slot (``analysis.latency_bounds``); rows summing to zero are left out."""
        ...

    def exemplars(self, first_minute: int, last_minute: int) -> list[SlotExemplar]:
        """The newest example trace per service × operation × slot kept in those minutes.

        Kept at write time, one per minute × service × operation × slot (a failing
        entry span preferred, then the slowest); deleted with their traces, so each
        names a stored trace.
        """
        ...

    def sdk_stats(self, service: str, window: TimeWindow) -> SdkStats:
        """The last ``threadline.sdk.stats`` report of each of the service's processes.

        Only reports that started in ``window``; newest process first.
        """
        ...

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
        """The target's traces split into focus (slow or failed) and baseline, compared.

        ``focus_traces``/``baseline_traces`` count the target's requests (entry spans;
        root spans without a service) in each group, exactly. ``percentile``
        (0 < p < 100) sets the slow threshold for ``Split.SLOW``, within the rollups'
        error of the exact percentile; at most ``max_attributes`` attribute values are
        returned, most focus traces first; operations and attributes are counted over
        at most ``sample`` traces per group, the first of each group in the order of a
        hash of the trace id (the same ones on every call), and the first
        ``sample_ids`` of them are returned with their spans (``sample_spans``: as
        ``get_traces`` reads them, but the SDK's own reports), or, for a trace whose
        request path for the target the store walked when it kept the trace, with that
        path's times instead (``path_times``: what ``analysis.request_paths.path_time``
        gives for the path ``request_path`` walks in those spans; a store may keep
        none). ``examples`` are the traces of the slowest focus requests.
        """
        ...

    def propagation(self, window: TimeWindow) -> PropagationFindings:
        """Unparented entry spans, orphans and broken message hops in ``window``.

        Counts are exact over whole minutes; a parent or a message's producer counts
        only within the backend's pair horizon of the span (15 minutes for DuckDB).
        """
        ...

    # SLOs (see ``threadline.server.slo_queries``). Counts come from rollups kept at
    # write time, like the aggregates above (journeys from the journey steps, one row
    # per trace of a session); windows end at ``end_ns`` and are widened
    # to whole minutes. Synthetic journeys (``journey.synthetic=true``) are left out unless the
    # query includes them; the SDK's own telemetry always is.

    def slo_counts(
        self, query: IndicatorQuery, end_ns: int, windows_ns: Sequence[int]
    ) -> list[Counts]:
        """Good and total events of each window (same order) ending at ``end_ns``.

        A latency threshold is compared by histogram bucket: events in the bucket
        holding the threshold count as good (at most ~2% over it).
        """
        ...

    def slo_series(
        self, query: IndicatorQuery, end_ns: int, step_ns: int, steps: int
    ) -> list[Counts]:
        """Good and total events of ``steps`` back-to-back windows of ``step_ns`` (whole
        minutes), the latest first: the first ends at ``end_ns``. What a burn rate
        over ``step_ns`` was at each window's end; journeys count per window."""
        ...

    def retry_counts(
        self, caller: str, callee: str, end_ns: int, windows_ns: Sequence[int]
    ) -> list[RetryCounts]:
        """Calls from ``caller`` to ``callee`` in each window, and how many were retries
        (``http.request.resend_count`` > 0, or a message delivered more than once)."""
        ...

    def slo_examples(
        self, query: IndicatorQuery, window: TimeWindow, *, limit: int = 5
    ) -> list[ExampleRow]:
        """Traces of the query's bad events that started in ``window``, one row per
        trace: the slowest first for latency, else the latest first. A bounded read of
        the window's spans, at most ``limit`` (and at most 20) rows."""
        ...

    def fold_pending(self) -> None:
        """Fold what was written since the last fold, so the reads that follow (an SLO
        evaluation) find folded rows; a store that folds nothing does nothing."""
        ...

    def alert_states(self) -> list[AlertRecord]:
        """Every alert's stored state, by SLO name then alert."""
        ...

    def save_alert_states(
        self, records: Sequence[AlertRecord], *, forget: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Replace the stored states of ``records`` and delete those keyed in ``forget``,
        together (all or none); durable when it returns."""
        ...

    # Kept documents (see ``threadline.server.kept_documents``): what every server
    # process on this database must agree on, so it lives here, not in one's files.

    def document(self, name: str) -> StoredDocument | None:
        """The document saved under ``name``, or None if none was."""
        ...

    def save_document(self, name: str, body: str, *, if_match: str | None) -> str:
        """Save ``body`` under ``name`` and return its ETag; durable when it returns.

        With ``if_match`` (an ETag, or ``NO_DOCUMENT``) the save happens only if that
        names what is stored now, checked and written together; otherwise it raises
        ``StaleDocument`` and nothing changes. None saves whatever is stored.
        """
        ...

    # Scheduled drills' results (see ``threadline.server.drills``): a bounded history
    # per probe, untouched by retention and erasure (they name synthetic traces only).

    def save_drill_result(self, result: DrillResult, *, keep: int) -> None:
        """Store ``result`` and keep only its probe's newest ``keep`` results (by start
        time), together; durable when it returns. ``keep`` < 1 is a ``ValueError``."""
        ...

    def drill_results(
        self, probe: str | None = None, *, limit: int = 50, failed: bool | None = None
    ) -> list[DrillResult]:
        """The newest ``limit`` results of every probe (or of ``probe``), ordered by
        probe name, then newest first; ``failed`` keeps failed (True) or passed (False)
        runs only, so ``limit=1, failed=True`` is each probe's last failure."""
        ...

    def delete_traces(self, trace_ids: Sequence[str]) -> int:
        """Delete every span of the given traces (tail sampling's drops); returns spans deleted.

        Durable when it returns. Unknown ids are ignored, so a repeated call is harmless.
        """
        ...

    # Deletion: retention, the size cap and erasure. Each runs alongside writes and
    # reads (neither waits for it) and returns how many spans it deleted.

    def delete_older_than(self, cutoff_ns: int) -> int:
        """Delete every span that started, and every log record timed, before ``cutoff_ns``."""
        ...

    def erase_user(self, forms: Sequence[str]) -> UserErasure:
        """Delete every span of the journeys of the user known by any of ``forms``.

        ``forms`` are the ways the user's id may be stored (raw, pseudonymised,
        hashed). That is every trace with a span carrying one of them in ``user_id`` or
        in an identity attribute (``enduser.id``, ...), or carrying a session id such a
        span carries: the sessions' spans without a user id go too, and so do the log
        records naming the user, of those sessions or of those traces. When it returns,
        no byte of those spans and records is left in the store's files (see ``compact``).
        """
        ...

    def start_ns_quantile(self, fraction: float) -> int | None:
        """When ``fraction`` (0 to 1) of the stored spans and log records had started (a
        log record at its time); None if neither is stored."""
        ...

    def size_bytes(self) -> int:
        """Bytes the stored spans take on disk now (what a size cap compares).

        What deleting can give back: space a deletion freed is not counted, even if
        the file has not shrunk.
        """
        ...

    def compact(self) -> None:
        """Rewrite the store so deleted spans leave its files and its size is the live data's.

        Reads, deletes and writes arriving meanwhile wait (writes up to the write
        queue's bound, then ``StoreOverloaded``); durable when it returns.
        """
        ...

    def health(self) -> StoreHealth:
        """Cheap (no query, no write): whether writes are accepted and how many wait."""
        ...

    def close(self) -> None:
        """Finish pending writes and release the backend; idempotent."""
        ...
