"""One codec for every broker's header shape, and Kafka headers end to end through it."""

from __future__ import annotations

from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

import threadline
from threadline.sdk.integrations import kafka
from threadline.sdk.integrations.codec import (
    as_byte_pairs,
    as_pairs,
    context_from,
    context_headers,
    to_carrier,
)
from threadline.sdk.integrations.messaging import DELIVERY_ATTEMPT, consumer_span, receive_span
from threadline.testing import SpanCapture, assert_one_trace

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_every_shape_normalises_to_one_carrier() -> None:
    """AMQP/NATS mappings, Redis byte fields, Kafka byte pairs and MQTT pairs read the same."""
    expected = {"traceparent": [TRACEPARENT], "baggage": ["session.id=s-1"]}
    text = {"traceparent": TRACEPARENT, "baggage": "session.id=s-1"}
    assert to_carrier(text) == expected
    assert to_carrier({k.encode(): v.encode() for k, v in text.items()}) == expected
    assert to_carrier(as_byte_pairs(text)) == expected
    assert to_carrier(as_pairs(text)) == expected
    assert to_carrier({"Traceparent": TRACEPARENT, "baggage": "session.id=s-1", "n": 3}) == expected
    assert to_carrier(None) == {}
    assert to_carrier(b"junk") == {}


def test_repeated_pairs_stay_separate_field_lines(threadline_spans: SpanCapture) -> None:
    """Two baggage pairs are combined like two HTTP header lines, not overwritten (with
    Threadline's propagator installed, as configure() and the fixture do)."""
    ctx = context_from([("baggage", "a=1"), ("baggage", b"b=2"), ("bad", b"\xff")])
    assert baggage.get_all(ctx) == {"a": "1", "b": "2"}


def test_kafka_record_headers_carry_trace_and_journey(threadline_spans: SpanCapture) -> None:
    """A Kafka consumer continues the producer's trace and journey from the record headers."""
    with threadline.journey(session_id="s-kafka"), kafka.sending("orders") as headers:
        assert all(isinstance(value, bytes) for _, value in headers)
    with kafka.processing("orders", headers, message_id="0:42") as span:
        assert baggage.get_baggage("session.id") == "s-kafka"
        assert span.is_recording()
    spans = threadline_spans.spans
    assert_one_trace(
        spans,
        journey={"session.id": "s-kafka"},
        kinds={"publish orders": SpanKind.PRODUCER, "process orders": SpanKind.CONSUMER},
    )
    consumer = threadline_spans.named("process orders")[0]
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.system"] == "kafka"
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert consumer.attributes["messaging.message.id"] == "0:42"


def test_batch_receive_links_every_producer(threadline_spans: SpanCapture) -> None:
    """A batch receive span links to each message's producer; each message is processed in its
    own trace with its attempt."""
    tracer = trace.get_tracer("tests.codec")
    carriers = []
    for index in range(3):
        with tracer.start_as_current_span(f"producer-{index}"):
            carriers.append(context_headers())
    with receive_span("redis", "jobs", carriers) as receive:
        for index, carrier in enumerate(carriers):
            with consumer_span("redis", "jobs", carrier, attempt=index + 1) as span:
                assert (
                    span.get_span_context().trace_id
                    == trace.get_current_span(context_from(carrier)).get_span_context().trace_id
                )
    assert receive.is_recording() is False  # ended
    received = threadline_spans.named("receive jobs")[0]
    assert received.kind == SpanKind.CONSUMER
    assert len(received.links) == 3
    assert received.attributes is not None
    assert received.attributes["messaging.batch.message_count"] == 3
    attempts = [
        (s.attributes or {}).get(DELIVERY_ATTEMPT) for s in threadline_spans.named("process jobs")
    ]
    assert attempts == [1, 2, 3]
