"""NATS core and JetStream with nats-py: context in the NATS message headers.

Producer::

    await nats.publish(nc, "orders", b"...")              # core NATS
    ack = await nats.publish_jetstream(js, "orders", b"...")

Consumer (core subscriptions, JetStream push and pull subscriptions)::

    await nc.subscribe("orders", cb=nats.traced_handler(on_msg))
    for msg in await psub.fetch(10):
        async with nats.processing(msg): ...

A JetStream message's id is ``<stream>:<stream sequence>`` and its delivery attempt is
JetStream's own ``num_delivered``, so a message ``nak``-ed and delivered again is
processed in the same trace with attempt 2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Span

from threadline.conventions import MESSAGING_MESSAGE_ID
from threadline.sdk.integrations.messaging import consumer_span, producer_span

if TYPE_CHECKING:
    import nats.aio.client
    import nats.aio.msg
    import nats.js
    import nats.js.api

SYSTEM: Final = "nats"
JS_ACK_PREFIX: Final = "$JS.ACK."

MsgHandler = Callable[["nats.aio.msg.Msg"], Awaitable[None]]


async def publish(
    client: nats.aio.client.Client,
    subject: str,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Core NATS publish inside a PRODUCER span whose context rides in the headers."""
    with producer_span(SYSTEM, subject) as (_, context_headers):
        await client.publish(subject, payload, headers={**(headers or {}), **context_headers})


async def publish_jetstream(
    jetstream: nats.js.JetStreamContext,
    subject: str,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
    **publish_options: Any,
) -> nats.js.api.PubAck:
    """JetStream publish inside a PRODUCER span; records the stored message's id."""
    with producer_span(SYSTEM, subject) as (span, context_headers):
        ack = await jetstream.publish(
            subject, payload, headers={**(headers or {}), **context_headers}, **publish_options
        )
        span.set_attribute(MESSAGING_MESSAGE_ID, f"{ack.stream}:{ack.seq}")
    return ack


@asynccontextmanager
async def processing(msg: nats.aio.msg.Msg) -> AsyncIterator[Span]:
    """A CONSUMER span (current in the block) for one message, in its producer's trace."""
    message_id: str | None = None
    attempt = 1
    if msg.reply and msg.reply.startswith(JS_ACK_PREFIX):
        metadata = msg.metadata
        message_id = f"{metadata.stream}:{metadata.sequence.stream}"
        attempt = metadata.num_delivered or 1
    with consumer_span(
        SYSTEM, msg.subject, msg.headers, message_id=message_id, attempt=attempt
    ) as span:
        yield span


def traced_handler(handler: MsgHandler) -> MsgHandler:
    """Wrap a subscription callback so each message runs in a CONSUMER span of its trace."""

    async def on_message(msg: nats.aio.msg.Msg) -> None:
        async with processing(msg):
            await handler(msg)

    return on_message
