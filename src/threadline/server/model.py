"""Values the server passes between ingest, storage, analysis and the API.

Records are frozen and slotted: once decoded, a span never changes. Ids are
lowercase hex strings (32 chars for traces, 16 for spans), times are Unix epoch
nanoseconds, as in OTLP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

AttributeValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float] | None
Attributes = Mapping[str, object]


class SpanKind(enum.StrEnum):
    """OTLP span kinds, named as the OpenTelemetry API names them."""

    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class StatusCode(enum.StrEnum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanLink:
    trace_id: str
    span_id: str
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One stored span, with the journey keys and hot attributes promoted to fields."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service_name: str
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    status: StatusCode = StatusCode.UNSET
    status_message: str = ""
    session_id: str | None = None
    user_id: str | None = None
    journey_id: str | None = None
    attributes: Attributes = field(default_factory=dict)
    resource: Attributes = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    scope_name: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_error(self) -> bool:
        return self.status is StatusCode.ERROR


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One row of a trace search or a journey: what a list of traces shows."""

    trace_id: str
    start_ns: int
    duration_ns: int
    root_service: str
    root_operation: str
    span_count: int
    error_count: int
    services: tuple[str, ...]
    session_id: str | None = None
    user_id: str | None = None
    # A span of the trace is marked ``journey.synthetic=true``: a probe's or a drill's.
    synthetic: bool = False

    @property
    def is_error(self) -> bool:
        return self.error_count > 0


@dataclass(frozen=True, slots=True)
class JourneySummary:
    """One journey (all traces sharing a session id) as a list of journeys shows it."""

    session_id: str
    user_id: str | None
    start_ns: int
    end_ns: int
    trace_count: int
    span_count: int
    error_count: int
    services: tuple[str, ...]

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


@dataclass(frozen=True, slots=True)
class ServiceOperations:
    service: str
    operations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoreCounts:
    spans: int
    traces: int
    sessions: int


# How a trace search orders its answer: by start time (newest or oldest first) or
# by duration (longest or shortest first); ties always by trace id.
TraceOrder = Literal["recent", "oldest", "slowest", "fastest"]
# Which traces a search lists by their synthetic mark: all, none of the marked, only them.
SyntheticFilter = Literal["include", "exclude", "only"]


@dataclass(frozen=True, slots=True)
class TraceCursor:
    """Where the previous page of a search ended: its last trace's sort key and id.

    ``key`` is that trace's start (``recent``/``oldest``) or duration
    (``slowest``/``fastest``) in nanoseconds.
    """

    order: TraceOrder
    key: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Filters of a trace search; ``None`` means "any". Durations in nanoseconds.

    ``attributes`` are ``(key, value)`` pairs that each must be on some span of the
    trace, as a span attribute or a resource attribute, compared as text. A page
    starts after ``after`` (keyset pagination, stable while spans arrive) or skips
    ``offset`` traces; not both.

    ``log_text`` (a case-insensitive substring of the body), ``log_severity`` (the
    least severity number) and ``log_service`` keep the traces with a log record
    meeting all three, logged within ``[start_ns, end_ns]`` when those are given.
    ``synthetic`` lists synthetic journeys' traces too (``include``), leaves them out
    (``exclude``) or lists only them (``only``).
    """

    service: str | None = None
    operation: str | None = None
    status: StatusCode | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    session_id: str | None = None
    user_id: str | None = None
    limit: int = 20
    journey_id: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    order: TraceOrder = "recent"
    offset: int = 0
    after: TraceCursor | None = None
    log_text: str | None = None
    log_severity: int | None = None
    log_service: str | None = None
    synthetic: SyntheticFilter = "include"
