"""QueryService: the one read service the API, UI, CLI and alerts call.

It asks the store, runs the pure analysis over what comes back and returns
values; the layers above only translate those values (to JSON, HTML or
terminal output). Requests for things that do not exist raise ``NotFound``;
identifiers that cannot be valid raise ``BadRequest`` before the store is asked.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import (
    CappedService,
    OperationRed,
    ServiceMap,
    ServiceRed,
    Split,
    Target,
    TimeWindow,
)
from threadline.server.analysis.assembly import (
    Completeness,
    assemble_trace,
    fix_up,
)
from threadline.server.analysis.compare import TraceComparison, compare_traces
from threadline.server.analysis.critical_path import CriticalPath, critical_path
from threadline.server.analysis.error_origin import (
    ERROR_SEVERITY,
    ErrorReport,
    find_error_origin,
)
from threadline.server.analysis.journey_narrative import (
    JourneyNarrative,
    narrate_journey,
    think_times,
)
from threadline.server.analysis.propagation_health import (
    PropagationReport,
    propagation_report,
)
from threadline.server.analysis.request_paths import path_time, request_path, time_totals
from threadline.server.analysis.skew import SkewAdjustment
from threadline.server.analysis.tail_latency import MIN_SUPPORT, Explanation, Measure, explain
from threadline.server.analysis.tree import SpanTree, summarize
from threadline.server.errors import BadRequest, InvalidParameter, NotFound
from threadline.server.id_prefixes import MAX_CANDIDATES, MIN_PREFIX_CHARS, unique_id
from threadline.server.log_batch import LogQuery, LogRecord
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanRecord,
    StoreCounts,
    TraceCursor,
    TraceQuery,
    TraceSummary,
)
from threadline.server.sdk_telemetry import SdkStats
from threadline.server.storage.base import JourneyOrder, Store
from threadline.server.user_ids import UserIdPseudonyms
from threadline.server.windows import (
    MAX_BUCKETS,
    WindowRequest,
    aligned,
    bucket_count,
    default_bucket_ns,
)

# Most traces one journey view lists. A journey is one person's session: a few
# hundred page views is already unusual, and the view must stay bounded for a bot.
MAX_JOURNEY_TRACES: Final = 500
# Session and user ids are opaque strings chosen by the instrumented service; any
# real one is far shorter. Longer input is refused instead of sent to the store.
MAX_KEY_CHARS: Final = 512
# Traces per group whose critical paths a slow-request explanation walks. The path
# needs whole traces read and assembled (~0.3 ms each); a hundred per group puts a
# mean within a few percent for the operations that matter, in ~60 ms.
PATH_SAMPLE: Final = 100
# Traces per group the store counts operations and attributes over (see
# ``storage.base.Store.trace_groups``).
GROUP_SAMPLE: Final = 2000
# Error log lines of one trace read for its error origin, newest first (the last line
# of each failed span is the one used). A trace that logged more errors than this is
# a loop; the newest thousand still cover every span that failed at its end.
MAX_ERROR_LINES: Final = 1000

TRACE_ID_CHARS: Final = 32
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class TraceView:
    """One trace after every fix-up: its summary, span tree, errors and completeness."""

    summary: TraceSummary
    tree: SpanTree
    errors: ErrorReport
    completeness: Completeness
    skew_adjustments: tuple[SkewAdjustment, ...] = ()
    duplicates_dropped: int = 0


@dataclass(frozen=True, slots=True)
class CriticalPathView:
    """A trace's critical path, with the trace's summary."""

    summary: TraceSummary
    path: CriticalPath


@dataclass(frozen=True, slots=True)
class TracePage:
    """One page of a trace search and where the next one starts (``None``: last page)."""

    traces: tuple[TraceSummary, ...]
    next_cursor: TraceCursor | None


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One trace of a journey and the think time before it.

    ``gap_ns`` is the time between the end of everything earlier in the journey
    and the start of this trace (0 when they overlap); ``None`` for the first step.
    """

    trace: TraceSummary
    gap_ns: int | None


@dataclass(frozen=True, slots=True)
class JourneyView:
    """What one session (or one user) went through, oldest trace first."""

    session_id: str | None
    user_id: str | None
    steps: tuple[JourneyStep, ...]


class QueryService:
    """Reads for every front end; ``clock`` gives "now" for windows and completeness."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int] = time.time_ns,
        user_ids: UserIdPseudonyms | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._user_ids = user_ids if user_ids is not None else UserIdPseudonyms()

    def stats(self) -> StoreCounts:
        return self._store.counts()

    def services(self) -> list[ServiceOperations]:
        return self._store.services()

    def search_page(self, query: TraceQuery) -> TracePage:
        """One page of a search, with the cursor of the next page when this one is full."""
        traces = self._store.search_traces(query)
        cursor = None
        if traces and len(traces) == query.limit:
            last = traces[-1]
            by_start = query.order in ("recent", "oldest")
            key = last.start_ns if by_start else last.duration_ns
            cursor = TraceCursor(order=query.order, key=key, trace_id=last.trace_id)
        return TracePage(traces=tuple(traces), next_cursor=cursor)

    def trace(self, trace_id: str) -> TraceView:
        """The trace with ``trace_id`` (32 hex characters, any case), fixed up for showing."""
        spans = self._trace_spans(trace_id)
        assembled = assemble_trace(spans, now_ns=self._clock())
        return TraceView(
            summary=summarize(assembled.tree),
            tree=assembled.tree,
            errors=find_error_origin(assembled.tree, self._error_lines(assembled.tree)),
            completeness=assembled.completeness,
            skew_adjustments=assembled.skew_adjustments,
            duplicates_dropped=assembled.duplicates_dropped,
        )

    def _error_lines(self, tree: SpanTree) -> list[LogRecord]:
        """The trace's log lines at ERROR or above, newest first, when a span failed:
        error origin describes a span without an exception event by its last one."""
        failed = [node.span for node in tree.nodes if node.span.is_error]
        if not failed:
            return []
        query = LogQuery(
            trace_id=failed[0].trace_id,
            min_severity=ERROR_SEVERITY,
            limit=MAX_ERROR_LINES,
            newest_first=True,
        )
        return self._store.logs(query)

    def critical_path(self, trace_id: str) -> CriticalPathView:
        """The critical path of a trace, after the same fix-ups as the trace view."""
        tree = fix_up(self._trace_spans(trace_id)).tree
        return CriticalPathView(summary=summarize(tree), path=critical_path(tree))

    def compare(self, baseline_id: str, candidate_id: str) -> TraceComparison:
        """Trace ``candidate_id`` against ``baseline_id``, operation by operation."""
        baseline = fix_up(self._trace_spans(baseline_id, name="a")).tree
        candidate = fix_up(self._trace_spans(candidate_id, name="b")).tree
        return compare_traces(baseline, candidate)

    def journeys(
        self,
        *,
        order: JourneyOrder = "recent",
        limit: int = 20,
        failed: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[JourneySummary]:
        return self._store.list_journeys(
            order=order, limit=limit, failed=failed, start_ns=start_ns, end_ns=end_ns
        )

    def session_journey(self, session_id: str) -> JourneyView:
        """Every trace of the session (id or unique prefix), oldest first, with think times."""
        session_id, traces = self._session_traces(session_id)
        user_id = next((t.user_id for t in traces if t.user_id), None)
        return JourneyView(session_id=session_id, user_id=user_id, steps=journey_steps(traces))

    def logs(self, query: LogQuery, *, user: str | None = None) -> list[LogRecord]:
        """The log records ``query`` selects; ``user``, when given, may be the raw id or
        its stored (pseudonymised) form: both are looked up."""
        if user is not None:
            query = dataclasses.replace(query, user_ids=tuple(self._user_ids.forms(user)))
        return self._store.logs(query)

    def user_journey(self, user_id: str) -> JourneyView:
        """Every trace of the user across sessions, oldest first.

        ``user_id`` may be the raw id: the services usually store its pseudonym, so
        both forms are looked up (see ``threadline.server.user_ids``).
        """
        _check_key("user_id", user_id)
        forms = self._user_ids.forms(user_id)
        found: dict[str, TraceSummary] = {}
        stored_as = user_id
        for form in forms:
            traces = self._store.journey_traces(user_id=form, limit=MAX_JOURNEY_TRACES)
            if traces and not found:
                stored_as = form
            found.update((trace.trace_id, trace) for trace in traces)
        if not found:
            raise NotFound(self._user_ids.not_found(user_id, forms))
        ordered = sorted(found.values(), key=lambda t: (t.start_ns, t.trace_id))
        steps = journey_steps(ordered[:MAX_JOURNEY_TRACES])
        return JourneyView(session_id=None, user_id=stored_as, steps=steps)

    def resolve_trace_id(self, trace_id: str, *, name: str = "trace_id") -> str:
        """The full trace id of ``trace_id``: 32 hex characters, or a unique prefix of them.

        A prefix shorter than ``MIN_PREFIX_CHARS`` is ``BadRequest``; one that no trace
        id starts with is ``NotFound``; one that several start with is ``Ambiguous``.
        """
        lowered = trace_id.strip().lower()
        if _TRACE_ID.fullmatch(lowered):
            return lowered
        if not _HEX.fullmatch(lowered) or len(lowered) > TRACE_ID_CHARS:
            normalize_trace_id(trace_id, name=name)  # raises, naming what is wrong
        if len(lowered) < MIN_PREFIX_CHARS:
            problem = (
                f"{_shown(trace_id)} is too short: give the 32 hexadecimal characters of a "
                f"trace id, or at least its first {MIN_PREFIX_CHARS}"
            )
            if name == "trace_id":
                raise BadRequest(f"trace_id {problem}")
            raise InvalidParameter(name, problem)
        found = self._store.ids_with_prefix("trace_id", lowered, limit=MAX_CANDIDATES + 1)
        return unique_id(found, lowered, what="trace id", none="no trace id starts with")

    def resolve_session_id(self, session_id: str) -> str:
        """``session_id`` if stored, else the one stored session id it is a prefix of.

        A prefix must have at least ``MIN_PREFIX_CHARS`` characters; ``NotFound`` when
        nothing matches, ``Ambiguous`` when several sessions start with it.
        """
        _check_key("session_id", session_id)
        found = self._store.ids_with_prefix("session_id", session_id, limit=MAX_CANDIDATES + 1)
        if session_id in found:
            return session_id
        if len(session_id) < MIN_PREFIX_CHARS:
            raise NotFound(
                f"no journey with session_id {_shown(session_id)} (a session id may be given "
                f"by its first {MIN_PREFIX_CHARS} or more characters)"
            )
        return unique_id(found, session_id, what="session id", none="no journey with session_id")

    def journey_narrative(self, session_id: str) -> JourneyNarrative:
        """The session's traces told as steps: what failed where, what held each one up."""
        _, traces = self._session_traces(session_id)
        spans = self._store.get_traces([t.trace_id for t in traces])
        return narrate_journey(_by_trace(spans).values())

    def window(self, request: WindowRequest) -> TimeWindow:
        return request.resolve(self._clock())

    def operations(
        self, request: WindowRequest, *, service: str | None = None
    ) -> tuple[TimeWindow, list[OperationRed]]:
        """RED metrics of every (service, operation) over the window, and the window."""
        window = self.window(request)
        return window, self._store.operation_red(window, service=service)

    def capped_services(self, service: str | None = None) -> list[CappedService]:
        """Services (or the one given) whose operation names reached the store's cap."""
        return [c for c in self._store.capped_services() if service in (None, c.service)]

    def service_red(
        self,
        service: str,
        request: WindowRequest,
        *,
        operation: str | None = None,
        bucket_ns: int | None = None,
    ) -> ServiceRed:
        """RED metrics of one service, per operation and over time buckets."""
        self._check_service(service)
        bucket = bucket_ns if bucket_ns is not None else default_bucket_ns(request.length_ns)
        window = aligned(self.window(request), bucket)
        if bucket_count(window, bucket) > MAX_BUCKETS:
            raise InvalidParameter(
                "bucket", f"the window would hold more than {MAX_BUCKETS} buckets; use larger ones"
            )
        return self._store.service_red(service, window, operation=operation, bucket_ns=bucket)

    def sdk_stats(self, service: str, request: WindowRequest) -> SdkStats:
        """What the SDK of each of the service's processes last said about its exporter."""
        self._check_service(service)
        return self._store.sdk_stats(service, self.window(request))

    def service_map(self, request: WindowRequest) -> ServiceMap:
        return self._store.service_map(self.window(request))

    def slow_requests(
        self,
        target: Target,
        request: WindowRequest,
        *,
        percentile: float = 90.0,
        measure: Measure = "critical_path",
        limit: int = 10,
        walked: int = PATH_SAMPLE,
    ) -> Explanation:
        """Why the target's slowest requests are slow: where time grows, which values go
        with it. ``walked``: traces of each group whose critical paths are walked."""
        if target.service is not None:
            self._check_service(target.service)
        sample_ids = walked if measure == "critical_path" else 0
        groups = self._store.trace_groups(
            target,
            Split.SLOW,
            self.window(request),
            percentile=percentile,
            min_support=MIN_SUPPORT,
            sample=GROUP_SAMPLE,
            sample_ids=sample_ids,
        )
        totals = None
        if measure == "critical_path":
            # Traces the store walked when it kept them come with their paths' times;
            # the others are walked here.
            times = dict(groups.path_times)
            for tid, spans in _by_trace(groups.sample_spans).items():
                if (path := request_path(fix_up(spans).tree, target)) is not None:
                    times[tid] = path_time(path)
            totals = time_totals(
                (times[tid] for tid in groups.focus_ids if tid in times),
                (times[tid] for tid in groups.baseline_ids if tid in times),
            )
        return explain(groups, path_totals=totals, min_support=MIN_SUPPORT, limit=limit)

    def error_hotspots(
        self, target: Target, request: WindowRequest, *, limit: int = 10
    ) -> Explanation:
        """Where the target's failed requests fail, and which values go with failing."""
        if target.service is not None:
            self._check_service(target.service)
        groups = self._store.trace_groups(
            target,
            Split.FAILED,
            self.window(request),
            min_support=MIN_SUPPORT,
            sample=GROUP_SAMPLE,
        )
        return explain(groups, min_support=MIN_SUPPORT, limit=limit)

    def propagation(self, request: WindowRequest) -> PropagationReport:
        """Where trace context was lost over the window."""
        return propagation_report(self._store.propagation(self.window(request)))

    def _check_service(self, service: str) -> None:
        # A mistyped name would otherwise look like a quiet service: say it is unknown.
        _check_key("service", service)
        if not self._store.has_service(service):
            raise NotFound(f"no service {_shown(service)} has sent spans")

    def _trace_spans(self, trace_id: str, *, name: str = "trace_id") -> list[SpanRecord]:
        resolved = self.resolve_trace_id(trace_id, name=name)
        spans = self._store.get_trace(resolved)
        if not spans:
            raise NotFound(f"no trace with trace_id {resolved!r}")
        return spans

    def _session_traces(self, session_id: str) -> tuple[str, list[TraceSummary]]:
        """The session's id (a unique prefix resolved) and its traces, oldest first."""
        resolved = self.resolve_session_id(session_id)
        traces = self._store.journey_traces(session_id=resolved, limit=MAX_JOURNEY_TRACES)
        if not traces:
            raise NotFound(f"no journey with session_id {_shown(session_id)}")
        return resolved, traces


def normalize_trace_id(trace_id: str, *, name: str = "trace_id") -> str:
    """The lowercase form of a W3C trace id; ``BadRequest`` if it is not 32 hex chars."""
    lowered = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(lowered):
        problem = (
            f"{_shown(trace_id)} is not valid: expected 32 hexadecimal characters "
            f"(or the first {MIN_PREFIX_CHARS} or more of them)"
        )
        if name == "trace_id":
            raise BadRequest(f"trace_id {problem}")
        raise InvalidParameter(name, f"trace id {problem}")
    return lowered


def journey_steps(traces: list[TraceSummary]) -> tuple[JourneyStep, ...]:
    """``traces`` (oldest first) with the gap since everything before each ended."""
    gaps = think_times((trace.start_ns, trace.start_ns + trace.duration_ns) for trace in traces)
    return tuple(
        JourneyStep(trace=trace, gap_ns=gap) for trace, gap in zip(traces, gaps, strict=True)
    )


def _by_trace(spans: Sequence[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Spans grouped by trace id, in the order the store returned them."""
    grouped: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        grouped[span.trace_id].append(span)
    return dict(grouped)


def _check_key(name: str, value: str) -> None:
    if not value:
        raise BadRequest(f"{name} must not be empty")
    if len(value) > MAX_KEY_CHARS:
        raise BadRequest(f"{name} is longer than {MAX_KEY_CHARS} characters")


def _shown(value: str) -> str:
    # Error messages quote what was sent, but never more than a line of it.
    return repr(value if len(value) <= 80 else value[:80] + "…")
