"""OTLP trace payloads (protobuf or JSON bytes) to a validated ``SpanBatch``.

Pure: bytes in, batch out, no I/O. Both encodings are parsed into one
``ExportTraceServiceRequest`` and share one conversion to columns, so a span
sent as JSON is stored exactly as the same span sent as protobuf.

Limits (``limits.IngestLimits``) apply here too: too many spans is a 413, and
attributes, events, links and long strings beyond their limits are dropped or cut
and marked on the span (see ``limits``). Redaction (``redact.IngestRedactor``), when
given, runs on every name, attribute and message as it is decoded and before the
limits cut it, so a value is never cut in the middle of something a rule would have
found; resources and scope names are redacted once each, not once per span.

A request is accepted or rejected whole: the first invalid span raises
``InvalidPayload`` naming where it is (``resourceSpans[i].scopeSpans[j].spans[k]``,
the field names of OTLP JSON) and what is wrong, and nothing is returned.

The conversion loop is the hot path of ingest, so it is written flat: one pass
over the spans appending to column lists, the resource's JSON encoded once per
resource rather than once per span, and enum values looked up by index.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.server.batch import COLUMNS, SpanBatch, dumps
from threadline.server.errors import BadRequest, InvalidPayload
from threadline.server.ingest import otlp_json
from threadline.server.ingest.attributes import (
    Redact,
    bounded_attributes,
    journey_key,
    listed,
    resource_of,
)
from threadline.server.ingest.limits import (
    DEFAULT_LIMITS,
    DROPPED_ATTRIBUTES_KEY,
    EVENTS_MARK,
    LINKS_MARK,
    NAME_MARK,
    STATUS_MESSAGE_MARK,
    TRUNCATED_KEY,
    IngestLimits,
    check_span_count,
    cut_text,
)
from threadline.server.ingest.redact import IngestRedactor
from threadline.server.model import SpanKind, StatusCode

TRACE_ID_BYTES: Final = 16
SPAN_ID_BYTES: Final = 8
ZERO_TRACE_ID: Final = bytes(TRACE_ID_BYTES)
ZERO_SPAN_ID: Final = bytes(SPAN_ID_BYTES)

# OTLP timestamps are fixed64; the store keeps int64 nanoseconds (good until 2262).
MAX_TIME_NS: Final = 2**63 - 1

# Indexed by the OTLP enum number. Numbers this table does not know (a newer
# protocol version) map to the "unspecified"/"unset" value instead of failing the
# whole request: the span is still worth keeping.
_KINDS: Final[tuple[str, ...]] = (
    SpanKind.UNSPECIFIED.value,
    SpanKind.INTERNAL.value,
    SpanKind.SERVER.value,
    SpanKind.CLIENT.value,
    SpanKind.PRODUCER.value,
    SpanKind.CONSUMER.value,
)
_STATUSES: Final[tuple[str, ...]] = (
    StatusCode.UNSET.value,
    StatusCode.OK.value,
    StatusCode.ERROR.value,
)

_QUOTED_NAME_CHARS: Final = 80
_NO_EVENTS: Final = "[]"
_NO_LINKS: Final = "[]"


class PayloadFormat(enum.Enum):
    """The two OTLP/HTTP encodings, with the content type each is sent and answered in."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"

    @property
    def content_type(self) -> str:
        return self.value


def decode(
    body: bytes,
    payload_format: PayloadFormat,
    limits: IngestLimits = DEFAULT_LIMITS,
    redactor: IngestRedactor | None = None,
) -> SpanBatch:
    """Decode an uncompressed OTLP ``ExportTraceServiceRequest`` body."""
    if payload_format is PayloadFormat.PROTOBUF:
        request = parse_protobuf(body)
    else:
        request = otlp_json.parse_export_request(body)
    return request_to_batch(request, limits, redactor)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse binary protobuf; a body that is not an ``ExportTraceServiceRequest`` is a 400."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest(f"body is not a valid protobuf ExportTraceServiceRequest: {exc}") from exc
    return request


def request_to_batch(
    request: ExportTraceServiceRequest,
    limits: IngestLimits = DEFAULT_LIMITS,
    redactor: IngestRedactor | None = None,
) -> SpanBatch:
    """Validate every span of ``request`` and convert them all to one columnar batch."""
    check_span_count(
        sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans),
        limits,
    )
    try:
        columns = _columns(request, limits, redactor)
    except RecursionError as exc:
        raise BadRequest("attribute values are nested too deeply") from exc
    return SpanBatch.from_columns(columns)


def _columns(
    request: ExportTraceServiceRequest, limits: IngestLimits, redactor: IngestRedactor | None
) -> dict[str, list[Any]]:
    trace_ids: list[str] = []
    span_ids: list[str] = []
    parent_ids: list[str | None] = []
    services: list[str] = []
    names: list[str] = []
    kinds: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    durations: list[int] = []
    statuses: list[str] = []
    status_messages: list[str] = []
    session_ids: list[str | None] = []
    user_ids: list[str | None] = []
    journey_ids: list[str | None] = []
    attributes: list[str] = []
    resources: list[str] = []
    events: list[str] = []
    links: list[str] = []
    scope_names: list[str] = []

    kind_count = len(_KINDS)
    status_count = len(_STATUSES)
    max_attributes = limits.max_attributes_per_span
    max_chars = limits.max_attribute_value_length

    for r, resource_spans in enumerate(request.resource_spans):
        resource = resource_of(resource_spans, limits, redactor)
        service, resource_json = resource.service, resource.json
        resource_session, resource_user, resource_journey = resource.journey_keys

        for s, scope_spans in enumerate(resource_spans.scope_spans):
            spans = scope_spans.spans
            # Same value for every span of the scope: extended once, not appended per span.
            services.extend([service] * len(spans))
            resources.extend([resource_json] * len(spans))
            scope_name = scope_spans.scope.name
            scope_found: list[str] = []
            if redactor is not None:
                scope_name = redactor.text(scope_name, "scope.name", scope_found)
            scope_names.extend([cut_text(scope_name, limits)] * len(spans))
            for k, span in enumerate(spans):
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if (
                    len(trace_id) != TRACE_ID_BYTES
                    or trace_id == ZERO_TRACE_ID
                    or len(span_id) != SPAN_ID_BYTES
                    or span_id == ZERO_SPAN_ID
                    or (parent_id and len(parent_id) != SPAN_ID_BYTES)
                    or start > MAX_TIME_NS
                    or end > MAX_TIME_NS
                ):
                    raise _invalid_span(f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}]", span)

                name = span.name
                status = span.status
                status_message = status.message
                found: list[str] | None = None
                if redactor is not None:  # before the limits cut anything
                    found = list(scope_found)
                    name = redactor.text(name, "name", found)
                    status_message = redactor.text(status_message, "status.message", found)
                events_json = (
                    _events_json(span.events, limits, redactor, found)
                    if span.events
                    else (_NO_EVENTS, False)
                )
                links_json = (
                    _links_json(span, r, s, k, limits, redactor, found)
                    if span.links
                    else (_NO_LINKS, False)
                )
                span_attributes = span.attributes
                redact = None if redactor is None or found is None else listed(redactor, found)
                if (
                    len(span_attributes) <= max_attributes
                    and len(name) <= max_chars
                    and len(status_message) <= max_chars
                    and not events_json[1]
                    and not links_json[1]
                ):
                    # The common case: only the attribute values remain to be checked.
                    span_attrs, attrs_json = bounded_attributes(span_attributes, limits, [], redact)
                else:
                    marks = []
                    if len(name) > max_chars:
                        name = name[:max_chars]
                        marks.append(NAME_MARK)
                    if len(status_message) > max_chars:
                        status_message = status_message[:max_chars]
                        marks.append(STATUS_MESSAGE_MARK)
                    if events_json[1]:
                        marks.append(EVENTS_MARK)
                    if links_json[1]:
                        marks.append(LINKS_MARK)
                    span_attrs, attrs_json = bounded_attributes(
                        span_attributes, limits, marks, redact
                    )
                trace_ids.append(trace_id.hex())
                span_ids.append(span_id.hex())
                parent_ids.append(parent_id.hex() if parent_id else None)
                names.append(name)
                kind = span.kind
                kinds.append(_KINDS[kind] if 0 <= kind < kind_count else _KINDS[0])
                starts.append(start)
                ends.append(end)
                durations.append(end - start if end > start else 0)
                code = status.code
                statuses.append(_STATUSES[code] if 0 <= code < status_count else _STATUSES[0])
                status_messages.append(status_message)
                session_ids.append(journey_key(span_attrs.get(SESSION_ID)) or resource_session)
                user_ids.append(journey_key(span_attrs.get(USER_ID)) or resource_user)
                journey_ids.append(journey_key(span_attrs.get(JOURNEY_ID)) or resource_journey)
                attributes.append(attrs_json)
                events.append(events_json[0])
                links.append(links_json[0])

    columns: dict[str, list[Any]] = {
        "trace_id": trace_ids,
        "span_id": span_ids,
        "parent_span_id": parent_ids,
        "service_name": services,
        "name": names,
        "kind": kinds,
        "start_ns": starts,
        "end_ns": ends,
        "duration_ns": durations,
        "status": statuses,
        "status_message": status_messages,
        "session_id": session_ids,
        "user_id": user_ids,
        "journey_id": journey_ids,
        "attributes": attributes,
        "resource": resources,
        "events": events,
        "links": links,
        "scope_name": scope_names,
    }
    # Guards against this module and the batch schema drifting apart.
    if tuple(columns) != COLUMNS:
        raise RuntimeError(f"decoder columns {tuple(columns)} do not match batch columns {COLUMNS}")
    return columns


def _invalid_span(where: str, span: Any) -> InvalidPayload:
    """Say which span is invalid and why, in words a sender can act on."""
    trace_id: bytes = span.trace_id
    span_id: bytes = span.span_id
    parent_id: bytes = span.parent_span_id
    if len(trace_id) != TRACE_ID_BYTES:
        field, problem = "traceId", f"must be {TRACE_ID_BYTES} bytes, got {len(trace_id)}"
    elif trace_id == ZERO_TRACE_ID:
        field, problem = "traceId", "must not be all zeros"
    elif len(span_id) != SPAN_ID_BYTES:
        field, problem = "spanId", f"must be {SPAN_ID_BYTES} bytes, got {len(span_id)}"
    elif span_id == ZERO_SPAN_ID:
        field, problem = "spanId", "must not be all zeros"
    elif parent_id and len(parent_id) != SPAN_ID_BYTES:
        field = "parentSpanId"
        problem = f"must be empty or {SPAN_ID_BYTES} bytes, got {len(parent_id)}"
    else:
        late = span.start_time_unix_nano > MAX_TIME_NS
        field = "startTimeUnixNano" if late else "endTimeUnixNano"
        problem = f"must be at most {MAX_TIME_NS} (nanoseconds since the epoch)"
    return InvalidPayload(f"{where}.{field}", f"{problem} (span {_quoted(span.name)})")


def _quoted(name: str) -> str:
    # Names come from outside and may be huge; a message only needs to identify the span.
    return repr(name) if len(name) <= _QUOTED_NAME_CHARS else repr(name[:_QUOTED_NAME_CHARS]) + "…"


def _events_json(
    events: Sequence[Any],
    limits: IngestLimits,
    redactor: IngestRedactor | None = None,
    found: list[str] | None = None,
) -> tuple[str, bool]:
    """The events within ``limits`` as JSON, and whether any was dropped or cut.

    With a ``redactor``, names and attributes are redacted first, and what was redacted
    is added to ``found`` (``events.name``, ``events.<event name>.<key>``).
    """
    kept = events[: limits.max_events_per_span]
    changed = len(kept) < len(events)
    rows = []
    for event in kept:
        full_name: str = event.name
        redact: Redact | None = None
        if redactor is not None and found is not None:
            full_name = redactor.text(full_name, "events.name", found)
            redact = _prefixed(redactor, found, f"events.{cut_text(full_name, limits)}.")
        event_attrs, _ = bounded_attributes(event.attributes, limits, [], redact)
        name = cut_text(full_name, limits)
        changed = changed or len(name) < len(full_name) or TRUNCATED_KEY in event_attrs
        changed = changed or DROPPED_ATTRIBUTES_KEY in event_attrs
        rows.append({"name": name, "time_ns": event.time_unix_nano, "attributes": event_attrs})
    return dumps(rows), changed


def _prefixed(redactor: IngestRedactor, found: list[str], prefix: str) -> Redact:
    """Redaction of an event's or link's attributes, listed in ``found`` after ``prefix``."""

    def redact(values: dict[str, object]) -> dict[str, object]:
        return redactor.attributes(values, found, prefix)

    return redact


def _links_json(
    span: Any,
    r: int,
    s: int,
    k: int,
    limits: IngestLimits,
    redactor: IngestRedactor | None = None,
    found: list[str] | None = None,
) -> tuple[str, bool]:
    """The links within ``limits`` as JSON, and whether any was dropped or cut.

    With a ``redactor``, attributes are redacted first (listed as ``links.<key>``).
    """
    redact = None if redactor is None or found is None else _prefixed(redactor, found, "links.")
    links = span.links
    kept = links[: limits.max_events_per_span]
    changed = len(kept) < len(links)
    rows = []
    for n, link in enumerate(kept):
        trace_id: bytes = link.trace_id
        span_id: bytes = link.span_id
        if len(trace_id) != TRACE_ID_BYTES or len(span_id) != SPAN_ID_BYTES:
            wrong_trace = len(trace_id) != TRACE_ID_BYTES
            field = "traceId" if wrong_trace else "spanId"
            size = TRACE_ID_BYTES if wrong_trace else SPAN_ID_BYTES
            got = len(trace_id) if wrong_trace else len(span_id)
            raise InvalidPayload(
                f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}].links[{n}].{field}",
                f"must be {size} bytes, got {got} (span {_quoted(span.name)})",
            )
        link_attrs, _ = bounded_attributes(link.attributes, limits, [], redact)
        changed = changed or TRUNCATED_KEY in link_attrs or DROPPED_ATTRIBUTES_KEY in link_attrs
        rows.append(
            {"trace_id": trace_id.hex(), "span_id": span_id.hex(), "attributes": link_attrs}
        )
    return dumps(rows), changed
