"""Our OTLP encoding decodes, with the official protobuf classes, to what the stock one sends."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from threadline.sdk.export.compact import capture
from threadline.sdk.export.encoder import SpanEncoder, varint


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _made_spans() -> Sequence[ReadableSpan]:
    keep = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "enc", "k": 1}))
    provider.add_span_processor(keep)
    tracer = provider.get_tracer("scope-a", "1.2")
    other = provider.get_tracer("scope-b")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_attributes({"s": "é", "i": -7, "big": 2**62, "f": 1.5, "b": True, "n": 0})
        root.set_attribute("list", [1, 2, 3])
        root.set_attribute("strs", ["a", "b"])
        with other.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 2, "ok": False})
            child.set_status(Status(StatusCode.ERROR, "boom"))
        with tracer.start_as_current_span(
            "linked", links=[Link(root.get_span_context(), {"why": "fan-in"})]
        ) as linked:
            linked.set_status(Status(StatusCode.OK))
    return keep.spans


def _spans_by_id(request: ExportTraceServiceRequest) -> dict[bytes, object]:
    found = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.ClearField("flags")  # stock omits W3C trace flags from the low byte
                for link in span.links:
                    link.ClearField("flags")
                if not span.HasField("status") or span.status.code == 0:
                    span.ClearField("status")  # stock sends an empty status; same meaning
                found[span.span_id] = (
                    resource_spans.resource,
                    scope_spans.scope,
                    span,
                )
    return found


def test_encoding_matches_the_stock_exporter_field_by_field() -> None:
    """Every span, scope and resource decodes to the same values as the stock encoding."""
    spans = _made_spans()
    stock = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializePartialToString())
    ours = ExportTraceServiceRequest.FromString(
        SpanEncoder().encode_request([capture(s, None) for s in spans])
    )
    assert len(_spans_by_id(ours)) == 3
    assert _spans_by_id(ours) == _spans_by_id(stock)


def test_flags_carry_trace_flags_and_remote_parent_bits() -> None:
    """OTLP span flags hold the W3C trace flags and say whether the parent is remote."""
    spans = _made_spans()
    ours = ExportTraceServiceRequest.FromString(
        SpanEncoder().encode_request([capture(s, None) for s in spans])
    )
    for resource_spans in ours.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                assert span.flags & 0x100  # HAS_IS_REMOTE
                assert not span.flags & 0x200  # parents are local here
                assert span.flags & 0x01  # sampled


def test_journey_and_environment_are_encoded_as_attributes() -> None:
    """Journey keys captured at start become span attributes; resource defaults are added."""
    span = _made_spans()[0]
    journey = (("session.id", "s-1"), ("user.id", "u-1"))
    encoder = SpanEncoder({"deployment.environment.name": "staging", "service.name": "ignored"})
    request = ExportTraceServiceRequest.FromString(encoder.encode_request([capture(span, journey)]))
    resource = {a.key: a.value for a in request.resource_spans[0].resource.attributes}
    assert resource["deployment.environment.name"].string_value == "staging"
    assert resource["service.name"].string_value == "enc"  # the span's resource wins
    attributes = {
        a.key: a.value.string_value
        for a in request.resource_spans[0].scope_spans[0].spans[0].attributes
    }
    assert attributes["session.id"] == "s-1"
    assert attributes["user.id"] == "u-1"


def test_resource_overrides_win_over_the_span_resource() -> None:
    """``process.pid`` given by the exporting process replaces one the resource states (a
    resource built before a fork names the parent)."""
    span = _made_spans()[0]
    encoder = SpanEncoder({"process.pid": 1}, {"process.pid": 4242})
    request = ExportTraceServiceRequest.FromString(encoder.encode_request([capture(span, None)]))
    resource = {a.key: a.value for a in request.resource_spans[0].resource.attributes}
    assert resource["process.pid"].int_value == 4242
    assert resource["service.name"].string_value == "enc"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varint_follows_the_protobuf_encoding(value: int, expected: bytes) -> None:
    """Varints are little-endian base 128 with a continuation bit (protobuf encoding guide)."""
    assert varint(value) == expected


def test_negative_int_is_ten_bytes_twos_complement() -> None:
    """A negative int64 is sent as its 64-bit two's complement (protobuf encoding guide)."""
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_repeated_values_are_served_from_the_cache_and_stay_correct() -> None:
    """Encoding the same batch twice (warm caches) gives identical bytes."""
    records = [capture(s, None) for s in _made_spans()]
    encoder = SpanEncoder()
    assert encoder.encode_request(records) == encoder.encode_request(records)
