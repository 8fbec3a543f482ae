"""RabbitMQ (real broker on 127.0.0.1:5672): pika and aio-pika carry trace and journey in
headers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.trace import SpanKind

import threadline
from sdk.integrations.conftest import require_broker
from support.missing import require_module
from threadline.sdk.integrations import rabbitmq
from threadline.sdk.integrations.messaging import DELIVERY_ATTEMPT
from threadline.testing import SpanCapture, assert_one_trace

pika = require_module("pika")
aio_pika = require_module("aio_pika")

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
MAX_EVENTS = 200


@pytest.fixture
def channel(unique_name: str) -> Iterator[Any]:
    require_broker("rabbitmq")
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    try:
        opened = connection.channel()
        opened.queue_declare(unique_name)
        try:
            yield opened
        finally:
            opened.queue_delete(unique_name)
    finally:
        connection.close()


def test_pika_consumer_continues_trace_and_redelivery_stays_in_it(
    threadline_spans: SpanCapture, channel: Any, unique_name: str
) -> None:
    """The consumer's span is a child of the producer's; a nack-ed, redelivered message is
    processed again in the same trace, as attempt 2."""
    seen: list[tuple[str | None, bool]] = []

    def handle(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        seen.append((baggage.get_baggage("session.id"), method.redelivered))
        if not method.redelivered:
            ch.basic_nack(method.delivery_tag, requeue=True)
        else:
            ch.basic_ack(method.delivery_tag)
            ch.stop_consuming()

    with threadline.journey(session_id="s-pika"):
        message_id = rabbitmq.publish(channel, "", unique_name, b"order-1")
    channel.basic_consume(unique_name, rabbitmq.traced_callback(handle))
    for _ in range(MAX_EVENTS):
        if len(seen) >= 2:
            break
        channel.connection.process_data_events(time_limit=0.1)
    assert seen == [("s-pika", False), ("s-pika", True)]

    spans = threadline_spans.spans
    assert_one_trace(spans, journey={"session.id": "s-pika"})
    producer = threadline_spans.named(f"publish {unique_name}")[0]
    consumers = threadline_spans.named(f"process {unique_name}")
    assert producer.kind == SpanKind.PRODUCER
    assert [c.kind for c in consumers] == [SpanKind.CONSUMER, SpanKind.CONSUMER]
    assert all(
        c.parent is not None and c.parent.span_id == producer.context.span_id for c in consumers
    )
    for consumer in consumers:
        attributes = consumer.attributes or {}
        assert attributes["messaging.system"] == "rabbitmq"
        assert attributes["messaging.destination.name"] == unique_name
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.message.id"] == message_id
    assert [(c.attributes or {})[DELIVERY_ATTEMPT] for c in consumers] == [1, 2]


def test_aio_pika_consumer_continues_trace_and_journey(
    threadline_spans: SpanCapture, unique_name: str
) -> None:
    """With aio-pika the consumer continues the producer's trace and journey."""
    require_broker("rabbitmq")

    async def roundtrip() -> str | None:
        connection = await aio_pika.connect(URL)
        async with connection:
            ch = await connection.channel()
            queue = await ch.declare_queue(unique_name)
            try:
                with threadline.journey(session_id="s-aio"):
                    await rabbitmq.publish_async(
                        ch.default_exchange, aio_pika.Message(b"order-2"), unique_name
                    )
                message = await queue.get(timeout=10)
                async with rabbitmq.processing(message):
                    await message.ack()
                    return baggage.get_baggage("session.id")  # type: ignore[return-value]
            finally:
                await queue.delete()

    assert asyncio.run(roundtrip()) == "s-aio"
    assert_one_trace(
        threadline_spans.spans,
        journey={"session.id": "s-aio"},
        kinds={
            f"publish {unique_name}": SpanKind.PRODUCER,
            f"process {unique_name}": SpanKind.CONSUMER,
        },
    )
