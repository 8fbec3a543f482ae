"""RabbitMQ with pika (blocking) and aio-pika: context in the AMQP message headers.

Producer::

    rabbitmq.publish(channel, exchange="", routing_key="orders", body=b"...")
    await rabbitmq.publish_async(channel.default_exchange, aio_pika.Message(b"..."), "orders")

Consumer::

    channel.basic_consume("orders", rabbitmq.traced_callback(on_message))
    async with rabbitmq.processing(message): ...        # aio-pika

The destination is the exchange, or the routing key for the default exchange (whose
name is empty), on both sides. The delivery attempt is ``x-delivery-count + 1`` when
the broker counts deliveries (quorum queues), else 2 for a redelivered message and 1
otherwise: classic queues only say *whether* a message was delivered before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Span

from threadline.conventions import MESSAGING_MESSAGE_ID
from threadline.sdk.integrations.messaging import consumer_span, producer_span

if TYPE_CHECKING:
    import aio_pika
    import aio_pika.abc
    import pika
    import pika.adapters.blocking_connection
    import pika.spec

SYSTEM: Final = "rabbitmq"
ROUTING_KEY: Final = "messaging.rabbitmq.destination.routing_key"
DELIVERY_COUNT_HEADER: Final = "x-delivery-count"

PikaHandler = Callable[
    [
        "pika.adapters.blocking_connection.BlockingChannel",
        "pika.spec.Basic.Deliver",
        "pika.spec.BasicProperties",
        bytes,
    ],
    None,
]


def destination(exchange: str, routing_key: str) -> str:
    """The destination name both sides record: the exchange, or the queue for the default one."""
    return exchange or routing_key


def delivery_attempt(headers: Mapping[str, Any] | None, redelivered: bool) -> int:
    """Which delivery of the message this is, 1 for the first."""
    count = (headers or {}).get(DELIVERY_COUNT_HEADER)
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count + 1
    return 2 if redelivered else 1


def publish(
    channel: pika.adapters.blocking_connection.BlockingChannel,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: pika.BasicProperties | None = None,
    *,
    mandatory: bool = False,
) -> str:
    """``basic_publish`` inside a PRODUCER span whose context rides in the headers; returns the
    message id (the one in ``properties``, else a new one)."""
    import pika as pika_module

    properties = properties or pika_module.BasicProperties()
    properties.message_id = properties.message_id or uuid.uuid4().hex
    with producer_span(
        SYSTEM,
        destination(exchange, routing_key),
        attributes={ROUTING_KEY: routing_key, MESSAGING_MESSAGE_ID: properties.message_id},
    ) as (_, headers):
        properties.headers = {**(properties.headers or {}), **headers}
        channel.basic_publish(exchange, routing_key, body, properties, mandatory)
    return str(properties.message_id)


def traced_callback(handler: PikaHandler) -> PikaHandler:
    """Wrap a pika ``on_message_callback`` so each delivery runs in a CONSUMER span of its trace."""

    def on_message(
        channel: pika.adapters.blocking_connection.BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        headers = properties.headers or {}
        with consumer_span(
            SYSTEM,
            destination(method.exchange, method.routing_key),
            headers,
            message_id=properties.message_id,
            attempt=delivery_attempt(headers, bool(method.redelivered)),
            attributes={ROUTING_KEY: method.routing_key},
        ):
            handler(channel, method, properties, body)

    return on_message


async def publish_async(
    exchange: aio_pika.abc.AbstractExchange,
    message: aio_pika.Message,
    routing_key: str,
    **publish_options: Any,
) -> str:
    """``exchange.publish`` inside a PRODUCER span whose context rides in the headers; returns
    the message id."""
    message.message_id = message.message_id or uuid.uuid4().hex
    with producer_span(
        SYSTEM,
        destination(exchange.name, routing_key),
        attributes={ROUTING_KEY: routing_key, MESSAGING_MESSAGE_ID: message.message_id},
    ) as (_, headers):
        message.headers = {**(message.headers or {}), **headers}
        await exchange.publish(message, routing_key, **publish_options)
    return message.message_id


@asynccontextmanager
async def processing(message: aio_pika.abc.AbstractIncomingMessage) -> AsyncIterator[Span]:
    """A CONSUMER span (current in the block) for one aio-pika message, in its producer's trace."""
    headers = message.headers or {}
    with consumer_span(
        SYSTEM,
        destination(message.exchange or "", message.routing_key or ""),
        headers,
        message_id=message.message_id,
        attempt=delivery_attempt(headers, bool(message.redelivered)),
        attributes={ROUTING_KEY: message.routing_key or ""},
    ) as span:
        yield span
