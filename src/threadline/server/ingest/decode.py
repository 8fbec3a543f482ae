"""OTLP trace payloads (protobuf or JSON bytes) to a validated ``SpanBatch``.

Pure: bytes in, batch out, no I/O. Both encodings are parsed into one
``ExportTraceServiceRequest`` and share one conversion to columns, so a span
sent as JSON is stored exactly as the same span sent as protobuf.

A request is accepted or rejected whole: the first invalid span raises
``InvalidPayload`` naming where it is (``resourceSpans[i].scopeSpans[j].spans[k]``,
the field names of OTLP JSON) and what is wrong, and nothing is returned.

The conversion loop is the hot path of ingest, so it is written flat: one pass
over the spans appending to column lists, the resource's JSON encoded once per
resource rather than once per span, and enum values looked up by index.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from threadline.conventions import JOURNEY_ID, SERVICE_NAME, SESSION_ID, USER_ID
from threadline.server.batch import COLUMNS, SpanBatch, dumps
from threadline.server.errors import BadRequest, InvalidPayload
from threadline.server.ingest import otlp_json
from threadline.server.model import SpanKind, StatusCode

DEFAULT_SERVICE_NAME: Final = "unknown_service"

TRACE_ID_BYTES: Final = 16
SPAN_ID_BYTES: Final = 8
_ZERO_TRACE_ID: Final = bytes(TRACE_ID_BYTES)
_ZERO_SPAN_ID: Final = bytes(SPAN_ID_BYTES)

# OTLP timestamps are fixed64; the store keeps int64 nanoseconds (good until 2262).
_MAX_TIME_NS: Final = 2**63 - 1

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


def decode(body: bytes, payload_format: PayloadFormat) -> SpanBatch:
    """Decode an uncompressed OTLP ``ExportTraceServiceRequest`` body."""
    if payload_format is PayloadFormat.PROTOBUF:
        request = parse_protobuf(body)
    else:
        request = otlp_json.parse_export_request(body)
    return request_to_batch(request)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse binary protobuf; a body that is not an ``ExportTraceServiceRequest`` is a 400."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest(f"body is not a valid protobuf ExportTraceServiceRequest: {exc}") from exc
    return request


def request_to_batch(request: ExportTraceServiceRequest) -> SpanBatch:
    """Validate every span of ``request`` and convert them all to one columnar batch."""
    try:
        columns = _columns(request)
    except RecursionError as exc:
        raise BadRequest("attribute values are nested too deeply") from exc
    return SpanBatch.from_columns(columns)


def _columns(request: ExportTraceServiceRequest) -> dict[str, list[Any]]:
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

    for r, resource_spans in enumerate(request.resource_spans):
        resource_attrs = attributes_to_dict(resource_spans.resource.attributes)
        resource_json = dumps(resource_attrs)
        service = resource_attrs.get(SERVICE_NAME)
        if not isinstance(service, str) or not service:
            service = DEFAULT_SERVICE_NAME
        resource_session = _journey_key(resource_attrs.get(SESSION_ID))
        resource_user = _journey_key(resource_attrs.get(USER_ID))
        resource_journey = _journey_key(resource_attrs.get(JOURNEY_ID))

        for s, scope_spans in enumerate(resource_spans.scope_spans):
            spans = scope_spans.spans
            # Same value for every span of the scope: extended once, not appended per span.
            services.extend([service] * len(spans))
            resources.extend([resource_json] * len(spans))
            scope_names.extend([scope_spans.scope.name] * len(spans))
            for k, span in enumerate(spans):
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if (
                    len(trace_id) != TRACE_ID_BYTES
                    or trace_id == _ZERO_TRACE_ID
                    or len(span_id) != SPAN_ID_BYTES
                    or span_id == _ZERO_SPAN_ID
                    or (parent_id and len(parent_id) != SPAN_ID_BYTES)
                    or start > _MAX_TIME_NS
                    or end > _MAX_TIME_NS
                ):
                    raise _invalid_span(f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}]", span)

                span_attrs = attributes_to_dict(span.attributes)
                trace_ids.append(trace_id.hex())
                span_ids.append(span_id.hex())
                parent_ids.append(parent_id.hex() if parent_id else None)
                names.append(span.name)
                kind = span.kind
                kinds.append(_KINDS[kind] if 0 <= kind < kind_count else _KINDS[0])
                starts.append(start)
                ends.append(end)
                durations.append(end - start if end > start else 0)
                status = span.status
                code = status.code
                statuses.append(_STATUSES[code] if 0 <= code < status_count else _STATUSES[0])
                status_messages.append(status.message)
                session_ids.append(_journey_key(span_attrs.get(SESSION_ID)) or resource_session)
                user_ids.append(_journey_key(span_attrs.get(USER_ID)) or resource_user)
                journey_ids.append(_journey_key(span_attrs.get(JOURNEY_ID)) or resource_journey)
                attributes.append(dumps(span_attrs))
                events.append(_events_json(span.events) if span.events else _NO_EVENTS)
                links.append(_links_json(span, r, s, k) if span.links else _NO_LINKS)

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
    elif trace_id == _ZERO_TRACE_ID:
        field, problem = "traceId", "must not be all zeros"
    elif len(span_id) != SPAN_ID_BYTES:
        field, problem = "spanId", f"must be {SPAN_ID_BYTES} bytes, got {len(span_id)}"
    elif span_id == _ZERO_SPAN_ID:
        field, problem = "spanId", "must not be all zeros"
    elif parent_id and len(parent_id) != SPAN_ID_BYTES:
        field = "parentSpanId"
        problem = f"must be empty or {SPAN_ID_BYTES} bytes, got {len(parent_id)}"
    else:
        late = span.start_time_unix_nano > _MAX_TIME_NS
        field = "startTimeUnixNano" if late else "endTimeUnixNano"
        problem = f"must be at most {_MAX_TIME_NS} (nanoseconds since the epoch)"
    return InvalidPayload(f"{where}.{field}", f"{problem} (span {_quoted(span.name)})")


def _quoted(name: str) -> str:
    # Names come from outside and may be huge; a message only needs to identify the span.
    return repr(name) if len(name) <= _QUOTED_NAME_CHARS else repr(name[:_QUOTED_NAME_CHARS]) + "…"


def _journey_key(value: object) -> str | None:
    """A journey key as its column holds it; an absent or empty value is None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return dumps(value)


def _events_json(events: Iterable[Any]) -> str:
    return dumps(
        [
            {
                "name": event.name,
                "time_ns": event.time_unix_nano,
                "attributes": attributes_to_dict(event.attributes),
            }
            for event in events
        ]
    )


def _links_json(span: Any, r: int, s: int, k: int) -> str:
    rows = []
    for n, link in enumerate(span.links):
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
        rows.append(
            {
                "trace_id": trace_id.hex(),
                "span_id": span_id.hex(),
                "attributes": attributes_to_dict(link.attributes),
            }
        )
    return dumps(rows)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, object]:
    """OTLP key/value list to a JSON-able dict; a repeated key keeps its last value."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def any_value(value: AnyValue) -> object:
    """An OTLP ``AnyValue`` as a JSON-able Python value.

    bytes become base64 text (as in protobuf's JSON mapping); non-finite doubles
    become the strings "NaN", "Infinity", "-Infinity" (also as in that mapping)
    because JSON has no literal for them; an empty value is None.
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else _non_finite(number)
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    # Unset, or a string-table index that only profiles use.
    return None


def _non_finite(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"
