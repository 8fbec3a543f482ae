"""Trace context across the demo's message hop, through the SDK's messaging spans.

The demo's queue is either RabbitMQ or an SQLite file behind one small interface, so
it uses the broker-neutral :mod:`threadline.sdk.integrations.messaging` spans rather
than a broker's own helper: the producer opens a PRODUCER span and puts the context
(trace context and the journey baggage) in the message headers; the consumer makes
that context current and opens a CONSUMER span under the producer span. Anything the
handler then calls (fulfillment calling the catalog) continues the same trace and
carries the same journey, exactly as an in-process call would.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from threadline import conventions
from threadline.demo.message_hop import Delivery, MessageQueue
from threadline.sdk.integrations.messaging import consumer_span, producer_span

# Set to 1 in a publisher's environment to send messages without their headers: the
# fault a propagation drill plants (a relay or library upgrade that drops them).
DROP_MESSAGE_HEADERS_ENV: Final = "THREADLINE_DEMO_DROP_MESSAGE_HEADERS"


def publish_traced(queue: MessageQueue, body: bytes) -> str:
    """Publish ``body`` inside a PRODUCER span whose context travels in the headers."""
    with producer_span(queue.system, queue.destination) as (span, headers):
        if os.environ.get(DROP_MESSAGE_HEADERS_ENV) == "1":
            headers = {}
        # The SQLite queue numbers a message only when it stores it.
        message_id = queue.publish(headers, body)
        span.set_attribute(conventions.MESSAGING_MESSAGE_ID, message_id)
        return message_id


def process_traced(
    queue: MessageQueue, handler: Callable[[bytes], None]
) -> Callable[[Delivery], None]:
    """Wrap ``handler`` so each message is processed in a CONSUMER span of its trace."""

    def on_delivery(delivery: Delivery) -> None:
        with consumer_span(
            queue.system, queue.destination, delivery.headers, message_id=delivery.message_id
        ):
            handler(delivery.body)

    return on_delivery
