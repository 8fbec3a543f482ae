"""The columnar span batch that ingest hands to a store.

Ingest decodes a whole OTLP request into one Arrow table with ``SPAN_SCHEMA``;
stores append it in one operation (DuckDB and ClickHouse both ingest Arrow
without a per-row Python loop). Attribute maps, events and links travel as JSON
text: hot keys are promoted to their own columns, the rest is rarely filtered on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from threadline.server.model import (
    SpanEvent,
    SpanKind,
    SpanLink,
    SpanRecord,
    StatusCode,
)

SPAN_SCHEMA: Final = pa.schema(
    [
        pa.field("trace_id", pa.string(), nullable=False),
        pa.field("span_id", pa.string(), nullable=False),
        pa.field("parent_span_id", pa.string()),
        pa.field("service_name", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("start_ns", pa.int64(), nullable=False),
        pa.field("end_ns", pa.int64(), nullable=False),
        pa.field("duration_ns", pa.int64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("status_message", pa.string(), nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("journey_id", pa.string()),
        pa.field("attributes", pa.string(), nullable=False),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("events", pa.string(), nullable=False),
        pa.field("links", pa.string(), nullable=False),
        pa.field("scope_name", pa.string(), nullable=False),
    ]
)
COLUMNS: Final[tuple[str, ...]] = tuple(SPAN_SCHEMA.names)


@dataclass(frozen=True, slots=True)
class SpanBatch:
    """Decoded spans of one request, ready to append; immutable once built."""

    table: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @staticmethod
    def from_columns(columns: Mapping[str, Sequence[Any]]) -> SpanBatch:
        return SpanBatch(pa.table(dict(columns), schema=SPAN_SCHEMA))

    @staticmethod
    def from_records(records: Iterable[SpanRecord]) -> SpanBatch:
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for record in records:
            for name, value in zip(COLUMNS, record_to_row(record), strict=True):
                columns[name].append(value)
        return SpanBatch.from_columns(columns)

    @staticmethod
    def concat(batches: Sequence[SpanBatch]) -> SpanBatch:
        """One batch of all rows of ``batches``, in order; a lone batch is returned as it is."""
        if len(batches) == 1:
            return batches[0]
        return SpanBatch(pa.concat_tables([b.table for b in batches]))


# One encoder reused for every span: building an encoder per call costs ~6% of decode.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: object) -> str:
    """Compact JSON, the one encoding of attribute maps, events and links."""
    return _ENCODER.encode(value)


def record_to_row(record: SpanRecord) -> tuple[Any, ...]:
    """A record as a row in ``COLUMNS`` order."""
    return (
        record.trace_id,
        record.span_id,
        record.parent_span_id,
        record.service_name,
        record.name,
        record.kind.value,
        record.start_ns,
        record.end_ns,
        record.duration_ns,
        record.status.value,
        record.status_message,
        record.session_id,
        record.user_id,
        record.journey_id,
        dumps(dict(record.attributes)),
        dumps(dict(record.resource)),
        dumps(
            [
                {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
                for e in record.events
            ]
        ),
        dumps(
            [
                {"trace_id": ln.trace_id, "span_id": ln.span_id, "attributes": dict(ln.attributes)}
                for ln in record.links
            ]
        ),
        record.scope_name,
    )


# Lookups by value: calling an enum class to find a member costs more than the rest of
# a field's conversion.
_KINDS: Final = {kind.value: kind for kind in SpanKind}
_STATUSES: Final = {status.value: status for status in StatusCode}
# Most spans carry no events and no links: their JSON is this, and needs no parse.
_NONE: Final = "[]"


def records_from_rows(rows: Iterable[Sequence[Any]]) -> list[SpanRecord]:
    """``record_from_row`` over the rows of one read, each distinct attribute or resource
    document parsed once.

    The spans of a trace share a resource document per process, and often their
    attributes (a route, a status code, the journey's ids): at 10M spans, the 4,184
    spans of the traces a critical path walks hold 21 distinct resource documents and
    218 distinct attribute ones. Their records share the parsed mappings, which are
    read-only (``Attributes`` is a ``Mapping``).
    """
    parsed: dict[str, Any] = {}

    def document(text: str) -> Any:
        found = parsed.get(text)
        if found is None:
            found = parsed[text] = json.loads(text)
        return found

    return [record_from_row(row, document) for row in rows]


def record_from_row(row: Sequence[Any], document: Callable[[str], Any] = json.loads) -> SpanRecord:
    """The inverse of ``record_to_row``, for rows read back in ``COLUMNS`` order; the
    attribute and resource documents parsed by ``document``.

    Every trace read builds one per span, so it unpacks the row in ``COLUMNS`` order
    instead of naming its values in a dict (the store contract's read-back test fails
    if the two orders part)."""
    (
        trace_id, span_id, parent_span_id, service_name, name, kind, start_ns, end_ns, _,
        status, status_message, session_id, user_id, journey_id, attributes, resource,
        events, links, scope_name,
    ) = row  # fmt: skip
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        service_name=service_name,
        name=name,
        kind=_KINDS.get(kind) or SpanKind(kind),
        start_ns=int(start_ns),
        end_ns=int(end_ns),
        status=_STATUSES.get(status) or StatusCode(status),
        status_message=status_message,
        session_id=session_id,
        user_id=user_id,
        journey_id=journey_id,
        attributes=document(attributes),
        resource=document(resource),
        events=_events(events),
        links=_links(links),
        scope_name=scope_name,
    )


def _events(text: str) -> tuple[SpanEvent, ...]:
    if text == _NONE:
        return ()
    return tuple(SpanEvent(e["name"], int(e["time_ns"]), e["attributes"]) for e in json.loads(text))


def _links(text: str) -> tuple[SpanLink, ...]:
    if text == _NONE:
        return ()
    return tuple(
        SpanLink(ln["trace_id"], ln["span_id"], ln["attributes"]) for ln in json.loads(text)
    )
