"""Values the store's aggregate queries return: RED metrics, the service map, trace groups.

These are what the store computes over many spans at once (percentiles, counts,
joins); the ranking and interpretation that follows is pure analysis
(``analysis/tail_latency.py``, ``analysis/propagation_health.py``). Durations are
nanoseconds; percentiles interpolate between the two nearest values, as
``quantile_cont`` and ``statistics.quantiles(method="inclusive")`` do, so they are
floats.

Aggregates count spans as stored, and the store drops re-sent spans, so a batch
re-sent by an exporter counts once. Fleet aggregates come from per-minute rollups:
counts exact, percentiles within 2% (``analysis/sketch.py``).

*Entry spans* are where a service takes a request: SERVER and CONSUMER spans, and
any span without a parent (the first span of a trace, whatever its kind).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from threadline.server.model import SpanRecord

# The operation under which a store counts a service's spans once that service has
# more distinct operation names than the store keeps (see ``CappedService``).
OTHER_OPERATION: Final = "(other)"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Spans that *start* in ``[start_ns, end_ns)``."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_ns < self.end_ns:
            raise ValueError(f"a time window needs 0 <= start < end, got {self}")

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency percentiles in nanoseconds (from rollups: within 2% of the exact ones)."""

    p50: float
    p90: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class RedStats:
    """Requests, errors and latency of a set of entry spans; no latency without requests."""

    requests: int
    errors: int
    latency: Percentiles | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class OperationRed:
    service: str
    operation: str
    stats: RedStats


@dataclass(frozen=True, slots=True)
class CappedService:
    """A service whose distinct operation names reached the store's cap.

    The first ``kept_operations`` names are kept; spans of any later name count under
    ``OTHER_OPERATION`` in every fleet aggregate (the spans keep their names).
    """

    service: str
    kept_operations: int


@dataclass(frozen=True, slots=True)
class RedBucket:
    """One time bucket of a series: requests that started in ``[start_ns, start_ns + size)``."""

    start_ns: int
    stats: RedStats


@dataclass(frozen=True, slots=True)
class ServiceRed:
    """RED metrics of one service's entry spans (or one of its operations) over a window.

    ``buckets`` cover the window without gaps (empty buckets have no requests);
    ``bucket_ns`` is ``None`` when no series was asked for.
    """

    service: str
    operation: str | None
    window: TimeWindow
    totals: RedStats
    operations: tuple[OperationRed, ...]
    bucket_ns: int | None
    buckets: tuple[RedBucket, ...]


class EdgeKind(enum.StrEnum):
    CALL = "call"  # CLIENT span → SERVER span
    MESSAGE = "message"  # PRODUCER span → CONSUMER span
    # Any other span → SERVER span of another service: a call whose CLIENT span was
    # not recorded (server-only instrumentation, a client the SDK does not see).
    INFERRED = "inferred"


@dataclass(frozen=True, slots=True)
class EdgeStats:
    """Calls along one edge: how many, how many failed (callee span), callee latency.

    ``queue_dwell`` (consumer start − producer end) is set for message edges only.
    """

    calls: int
    errors: int
    latency: Percentiles
    queue_dwell: Percentiles | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class ServiceEdge:
    caller: str
    callee: str
    kind: EdgeKind
    stats: EdgeStats


@dataclass(frozen=True, slots=True)
class OperationEdge:
    """A call from one operation (the CLIENT/PRODUCER span's name) to another."""

    caller: str
    caller_operation: str
    callee: str
    callee_operation: str
    kind: EdgeKind
    stats: EdgeStats


@dataclass(frozen=True, slots=True)
class ServiceMap:
    """Who calls whom over a window; ``services`` holds each service's own entry-span RED."""

    window: TimeWindow
    services: tuple[OperationRed, ...]  # operation is "" : the whole service
    edges: tuple[ServiceEdge, ...]
    operation_edges: tuple[OperationEdge, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """The requests a comparison is about: entry spans of a service (and operation).

    With no service, the requests are the traces themselves (their root spans).
    """

    service: str | None = None
    operation: str | None = None

    def __post_init__(self) -> None:
        if self.operation is not None and self.service is None:
            raise ValueError("an operation needs its service")


class Split(enum.StrEnum):
    """How the traces of a target are split into a *focus* group and a baseline."""

    SLOW = "slow"  # focus: a target span at or above the percentile threshold
    FAILED = "failed"  # focus: a target span with status ERROR


def check_split(percentile: float, examples: int) -> None:
    """The arguments every store's ``trace_groups`` split takes: a percentile strictly
    between 0 and 100 (the slow threshold) and at least one example trace."""
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if examples < 1:
        raise ValueError(f"examples must be at least 1, got {examples}")


@dataclass(frozen=True, slots=True)
class OperationPresence:
    """One (service, operation) across the two groups of traces.

    ``*_traces``: traces of the group holding at least one such span.
    ``*_self_ns``: total self time of those spans in the group (a span's duration
    minus the union of its children's intervals within it).
    ``*_error_traces``: traces of the group where such a span is an error *origin*
    (status ERROR and none of its children failed).
    ``*_self_squares``: the sum over those traces of the square of each one's self time
    in the operation (ns²), so analysis can tell how far a sampled mean may be off
    (``analysis.sampling_error``).
    """

    service: str
    operation: str
    focus_traces: int
    baseline_traces: int
    focus_self_ns: int
    baseline_self_ns: int
    focus_error_traces: int
    baseline_error_traces: int
    focus_self_squares: float
    baseline_self_squares: float


@dataclass(frozen=True, slots=True)
class AttributeCount:
    """Traces of each group with ``key=value`` on any span (span or resource attribute).

    ``key_values`` and ``key_traces``: distinct values of ``key`` and traces carrying
    it over both groups' samples, so analysis can tell identifiers (a value per
    trace) from properties; 0 when not counted.
    """

    key: str
    value: str
    focus_traces: int
    baseline_traces: int
    key_values: int = 0
    key_traces: int = 0


@dataclass(frozen=True, slots=True)
class TraceGroups:
    """A target's traces in a window, split into focus and baseline, and what each holds.

    ``threshold_ns`` is the latency percentile that separates slow traces (``SLOW``
    only). ``*_traces`` count every trace of each group; ``operations`` and
    ``attributes`` are counted over a sample of ``*_sample`` traces of each group
    (all of them when the group is small). ``attributes`` holds only values found
    on at least ``min_support`` sampled focus traces. ``examples`` are focus trace
    ids, worst (slowest) first. ``focus_ids``/``baseline_ids`` are the first trace
    ids of each group's sample, for analyses that need whole traces, and
    ``sample_spans`` every span of those traces but the SDK's own reports, ordered by
    trace, start and span id (read with the counts, not read again), but for the traces
    of ``path_times``: each one's own time per (service, operation) on the critical path
    of the target's request in it (``analysis.request_paths.path_time``), walked when the
    store kept the trace (a store may keep none).
    """

    target: Target
    split: Split
    window: TimeWindow
    threshold_ns: float | None
    focus_traces: int
    baseline_traces: int
    focus_sample: int
    baseline_sample: int
    operations: tuple[OperationPresence, ...]
    attributes: tuple[AttributeCount, ...]
    examples: tuple[str, ...]
    focus_ids: tuple[str, ...] = ()
    baseline_ids: tuple[str, ...] = ()
    sample_spans: tuple[SpanRecord, ...] = ()
    path_times: Mapping[str, Mapping[tuple[str, str], int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnparentedEntries:
    """SERVER/CONSUMER spans of one operation that arrived without a parent.

    Only for services that other services normally call (they also have entry
    spans with a parent): there a missing parent means the trace context was lost.
    Spans with links started a trace on purpose and are not counted as unparented.
    """

    service: str
    operation: str
    entry_spans: int
    unparented: int
    example_trace_id: str | None


@dataclass(frozen=True, slots=True)
class OrphanSpans:
    """Spans of one service whose parent span id is not in their trace."""

    service: str
    orphans: int
    example_trace_id: str | None


@dataclass(frozen=True, slots=True)
class MessageHop:
    """Messages (matched by ``messaging.message.id``) from producers in one service to consumers.

    ``broken``: the consumer span is in another trace than the producer and does not
    link to it. ``linked``: another trace, but with a span link to the producer
    (a deliberate new trace, as batch consumers start).
    """

    producer: str
    consumer: str
    destination: str
    messages: int
    broken: int
    linked: int
    example_producer_trace_id: str | None
    example_consumer_trace_id: str | None


@dataclass(frozen=True, slots=True)
class PropagationFindings:
    """Where trace context is lost over a window, as counted by the store."""

    window: TimeWindow
    entries: tuple[UnparentedEntries, ...]
    orphans: tuple[OrphanSpans, ...]
    message_hops: tuple[MessageHop, ...]
