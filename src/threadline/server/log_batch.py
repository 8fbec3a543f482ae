"""Log records: the columnar batch ingest hands to a store, and the record read back.

A log record is kept as OTLP sends it (timestamps, severity number and text, body,
attributes, resource, trace and span id) plus the columns the views join on: the
service and the journey keys, read from the record's attributes or its resource as
for spans. The body travels as text: a string body as it is, any other body (a
number, bytes, an array, a map) as its compact JSON, with ``body_kind`` saying
which, so a viewer shows ``{"a": 1}`` as the map it was sent as and never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pyarrow as pa

from threadline.server.batch import dumps

BodyKind = Literal["empty", "string", "json"]

LOG_SCHEMA: Final = pa.schema(
    [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("observed_ns", pa.int64(), nullable=False),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("service_name", pa.string(), nullable=False),
        pa.field("severity_number", pa.int64(), nullable=False),
        pa.field("severity_text", pa.string(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
        pa.field("body_kind", pa.string(), nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("journey_id", pa.string()),
        pa.field("attributes", pa.string(), nullable=False),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("scope_name", pa.string(), nullable=False),
    ]
)
LOG_COLUMNS: Final[tuple[str, ...]] = tuple(LOG_SCHEMA.names)

# OpenTelemetry log data model, "Field: SeverityNumber": the first number of each
# range, by the short name the API and the CLI accept.
SEVERITIES: Final[Mapping[str, int]] = {
    "trace": 1,
    "debug": 5,
    "info": 9,
    "warn": 13,
    "warning": 13,
    "error": 17,
    "fatal": 21,
}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored log record; ``body`` is text or JSON as ``body_kind`` says."""

    time_ns: int
    observed_ns: int
    trace_id: str | None
    span_id: str | None
    service_name: str
    severity_number: int
    severity_text: str
    body: str
    body_kind: BodyKind = "string"
    session_id: str | None = None
    user_id: str | None = None
    journey_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope_name: str = ""


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which log records to read; every filter given must hold.

    ``user_ids`` are the forms one user may be stored as (any matches).
    ``text`` is a case-insensitive substring of the body; ``min_severity`` the least
    severity number; the window is ``[start_ns, end_ns)`` on the record's time.
    Results are ordered by time (then by the store's own order), ``offset`` of them
    skipped and at most ``limit`` returned.
    """

    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    user_ids: tuple[str, ...] = ()
    service: str | None = None
    min_severity: int | None = None
    text: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must not be negative, got {self.offset}")


@dataclass(frozen=True, slots=True)
class LogBatch:
    """Decoded log records of one request, ready to append; immutable once built."""

    table: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @staticmethod
    def from_columns(columns: Mapping[str, Sequence[Any]]) -> LogBatch:
        return LogBatch(pa.table(dict(columns), schema=LOG_SCHEMA))

    @staticmethod
    def from_records(records: Iterable[LogRecord]) -> LogBatch:
        columns: dict[str, list[Any]] = {name: [] for name in LOG_COLUMNS}
        for record in records:
            for name, value in zip(LOG_COLUMNS, log_to_row(record), strict=True):
                columns[name].append(value)
        return LogBatch.from_columns(columns)

    @staticmethod
    def concat(batches: Sequence[LogBatch]) -> LogBatch:
        if len(batches) == 1:
            return batches[0]
        return LogBatch(pa.concat_tables([b.table for b in batches]))


def log_to_row(record: LogRecord) -> tuple[Any, ...]:
    """A record as a row in ``LOG_COLUMNS`` order."""
    return (
        record.time_ns,
        record.observed_ns,
        record.trace_id,
        record.span_id,
        record.service_name,
        record.severity_number,
        record.severity_text,
        record.body,
        record.body_kind,
        record.session_id,
        record.user_id,
        record.journey_id,
        dumps(dict(record.attributes)),
        dumps(dict(record.resource)),
        record.scope_name,
    )


def log_from_row(row: Sequence[Any]) -> LogRecord:
    """The inverse of ``log_to_row``, for rows read back in ``LOG_COLUMNS`` order."""
    values = dict(zip(LOG_COLUMNS, row, strict=True))
    return LogRecord(
        time_ns=int(values["time_ns"]),
        observed_ns=int(values["observed_ns"]),
        trace_id=values["trace_id"],
        span_id=values["span_id"],
        service_name=values["service_name"],
        severity_number=int(values["severity_number"]),
        severity_text=values["severity_text"],
        body=values["body"],
        body_kind=values["body_kind"],
        session_id=values["session_id"],
        user_id=values["user_id"],
        journey_id=values["journey_id"],
        attributes=json.loads(values["attributes"]),
        resource=json.loads(values["resource"]),
        scope_name=values["scope_name"],
    )
