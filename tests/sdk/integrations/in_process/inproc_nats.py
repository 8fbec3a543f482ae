"""NATS and JetStream (real server on 127.0.0.1:4222): context in message headers."""

from __future__ import annotations

import asyncio

from opentelemetry import baggage
from opentelemetry.trace import SpanKind

import threadline
from sdk.integrations.conftest import require_broker
from support.missing import require_module
from threadline.sdk.integrations import nats as nats_tracing
from threadline.sdk.integrations.messaging import DELIVERY_ATTEMPT
from threadline.testing import SpanCapture, assert_one_trace

nats = require_module("nats")

URL = "nats://127.0.0.1:4222"


def test_core_subscription_continues_trace_and_journey(
    threadline_spans: SpanCapture, unique_name: str
) -> None:
    """A core NATS subscriber's span is a child of the publisher's, with the journey."""
    require_broker("nats")

    async def roundtrip() -> str | None:
        client = await nats.connect(URL)
        received: asyncio.Queue[str | None] = asyncio.Queue()

        async def on_msg(msg: object) -> None:
            await received.put(baggage.get_baggage("session.id"))  # type: ignore[arg-type]

        try:
            await client.subscribe(unique_name, cb=nats_tracing.traced_handler(on_msg))
            with threadline.journey(session_id="s-nats"):
                await nats_tracing.publish(client, unique_name, b"hello")
            return await asyncio.wait_for(received.get(), 10)
        finally:
            await client.close()

    assert asyncio.run(roundtrip()) == "s-nats"
    assert_one_trace(
        threadline_spans.spans,
        journey={"session.id": "s-nats"},
        kinds={
            f"publish {unique_name}": SpanKind.PRODUCER,
            f"process {unique_name}": SpanKind.CONSUMER,
        },
    )


def test_jetstream_redelivery_after_nak_stays_in_the_trace(
    threadline_spans: SpanCapture, unique_name: str
) -> None:
    """A JetStream message nak-ed once is delivered again, processed in the same trace with
    attempt 2 and the same message id."""
    require_broker("nats")

    async def roundtrip() -> list[int]:
        client = await nats.connect(URL)
        js = client.jetstream()
        try:
            await js.add_stream(name=unique_name, subjects=[unique_name])
            psub = await js.pull_subscribe(unique_name, durable="workers")
            with threadline.journey(session_id="s-js"):
                await nats_tracing.publish_jetstream(js, unique_name, b"job")
            attempts = []
            for _ in range(2):
                (msg,) = await psub.fetch(1, timeout=10)
                async with nats_tracing.processing(msg):
                    attempts.append(msg.metadata.num_delivered)
                    await (msg.nak() if len(attempts) == 1 else msg.ack())
            return attempts
        finally:
            await js.delete_stream(unique_name)
            await client.close()

    assert asyncio.run(roundtrip()) == [1, 2]
    assert_one_trace(threadline_spans.spans, journey={"session.id": "s-js"})
    producer = threadline_spans.named(f"publish {unique_name}")[0]
    processes = threadline_spans.named(f"process {unique_name}")
    assert [(p.attributes or {})[DELIVERY_ATTEMPT] for p in processes] == [1, 2]
    message_id = (producer.attributes or {})["messaging.message.id"]
    assert message_id == f"{unique_name}:1"
    assert {(p.attributes or {})["messaging.message.id"] for p in processes} == {message_id}
