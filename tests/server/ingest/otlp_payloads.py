"""Builders of OTLP payloads for the ingest tests: real SDK spans, JSON, hand-made protobuf."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, format_span_id, format_trace_id

from threadline.server.batch import SpanBatch, record_from_row
from threadline.server.model import SpanEvent, SpanLink, SpanRecord
from threadline.server.model import SpanKind as StoredKind
from threadline.server.model import StatusCode as StoredStatus

# In the style of opentelemetry-proto's examples/trace.json and of what JavaScript,
# Go and Java exporters send: upper-case hex ids, 64-bit numbers as strings or
# numbers, integer enums, fields this version does not know.
HAND_WRITTEN_JSON = """
{
  "resourceSpans": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "frontend-js"}},
      {"key": "session.id", "value": {"stringValue": "browser-session-1"}}
    ]},
    "scopeSpans": [{
      "scope": {"name": "@opentelemetry/instrumentation-fetch", "version": "0.52.0"},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "HTTP GET",
        "kind": 3,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "attributes": [
          {"key": "http.response.status_code", "value": {"intValue": "503"}},
          {"key": "retry", "value": {"boolValue": true}},
          {"key": "ratio", "value": {"doubleValue": 0.25}},
          {"key": "tags", "value": {"arrayValue": {"values": [
            {"stringValue": "a"}, {"intValue": 2}]}}},
          {"key": "user.id", "value": {"stringValue": "user-9"}}
        ],
        "events": [{"timeUnixNano": "1544712660500000000", "name": "first byte",
                    "attributes": [{"key": "size", "value": {"intValue": "1024"}}]}],
        "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708"}],
        "status": {"code": 2, "message": "upstream unavailable"},
        "flags": 257,
        "aFieldFromTheFuture": {"nested": [1, 2, 3]}
      }]
    }]
  }]
}
"""

HOSTILE_VALUES = {
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "sql": "'; DROP TABLE spans; -- \" OR 1=1",
    "control": "nul\x00bell\x07esc\x1b[31mred\r\nnext\ttab\x7f",
    "unicode": "Zoë 北京 \u202eevil\u202c 😀" * 500,
    "json_like": '{"not": "an object"}',
    "backslashes": "C:\\path\\\\to\\u0000",
}


def sdk_spans(
    *, service: str = "checkout", extra: dict[str, Any] | None = None
) -> list[ReadableSpan]:
    """Spans made by a real TracerProvider: every kind, an error, an event, a link, journey keys."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "journey.id": "journey-from-resource"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    root_attributes: dict[str, Any] = {
        "session.id": "session-42",
        "user.id": "user-7",
        "http.route": "/cart/{id}",
        "http.response.status_code": 200,
        "cart.total": 12.5,
        "cart.express": True,
        "cart.items": ["apple", "pear"],
        "cart.quantities": [1, 2],
        **(extra or {}),
    }
    with tracer.start_as_current_span(
        "GET /cart/{id}", kind=SpanKind.SERVER, attributes=root_attributes
    ):
        with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT) as query:
            query.add_event("retry", {"attempt": 2, "reason": "timeout"})
            query.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
        with tracer.start_as_current_span("publish order", kind=SpanKind.PRODUCER) as publish:
            link = Link(publish.get_span_context(), {"link.reason": "follows"})
        with tracer.start_as_current_span("render", links=[link]) as render:
            render.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("consume order", kind=SpanKind.CONSUMER):
        pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def protobuf_request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The request the stock OTLP exporter sends for ``spans``."""
    return encode_spans(spans)


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """``request`` as OTLP JSON: lowerCamelCase, integer enums, hex ids (not base64)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _base64_ids_to_hex(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", []):
                    _base64_ids_to_hex(link, ("traceId", "spanId"))
    return json.dumps(document).encode()


def _base64_ids_to_hex(message: dict[str, Any], fields: tuple[str, ...]) -> None:
    for field in fields:
        if field in message:
            message[field] = base64.b64decode(message[field]).hex()


def expected_record(span: ReadableSpan) -> SpanRecord:
    """What the store should hold for an SDK span, derived independently of the decoder."""
    context = span.get_span_context()
    assert context is not None
    resource = dict(span.resource.attributes)
    attributes = {k: _plain(v) for k, v in (span.attributes or {}).items()}

    def journey_key(key: str) -> str | None:
        value = attributes.get(key, resource.get(key))
        return None if value is None else str(value)

    return SpanRecord(
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        parent_span_id=format_span_id(span.parent.span_id) if span.parent else None,
        service_name=str(resource["service.name"]),
        name=span.name,
        kind=StoredKind(span.kind.name.lower()),
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        status=StoredStatus(span.status.status_code.name.lower()),
        status_message=span.status.description or "",
        session_id=journey_key("session.id"),
        user_id=journey_key("user.id"),
        journey_id=journey_key("journey.id"),
        attributes=attributes,
        resource={k: _plain(v) for k, v in resource.items()},
        events=tuple(
            SpanEvent(e.name, e.timestamp, {k: _plain(v) for k, v in (e.attributes or {}).items()})
            for e in span.events
        ),
        links=tuple(
            SpanLink(
                format_trace_id(ln.context.trace_id),
                format_span_id(ln.context.span_id),
                {k: _plain(v) for k, v in (ln.attributes or {}).items()},
            )
            for ln in span.links
        ),
        scope_name=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def records(batch: SpanBatch) -> list[SpanRecord]:
    return [record_from_row(list(row.values())) for row in batch.table.to_pylist()]


def by_span_id(spans: Sequence[SpanRecord]) -> dict[str, SpanRecord]:
    return {s.span_id: s for s in spans}


def string_value(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def one_span_request(**span_fields: Any) -> ExportTraceServiceRequest:
    """A request with one valid span; ``span_fields`` override its fields."""
    fields: dict[str, Any] = {
        "trace_id": bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        "span_id": bytes.fromhex("eee19b7ec3c1b174"),
        "name": "charge card",
        "kind": trace_pb2.Span.SPAN_KIND_INTERNAL,
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_250_000_000,
        **span_fields,
    }
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(string_value("service.name", "payments"))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "payments.lib"
    scope_spans.spans.add(**fields)
    return request
