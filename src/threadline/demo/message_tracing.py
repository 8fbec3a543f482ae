"""Trace context across the message hop, with the OpenTelemetry API and nothing else.

The producer opens a PRODUCER span and injects the current context (trace context and
the journey baggage) into the message headers; the consumer extracts it, makes it the
current context and opens a CONSUMER span under the producer span. Anything the
handler then calls (fulfillment calling the catalog) continues the same trace and
carries the same journey, exactly as an in-process call would.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind

from threadline import conventions
from threadline.demo.message_hop import Delivery, MessageQueue

_tracer = trace.get_tracer("threadline.demo.message_hop")


def publish_traced(queue: MessageQueue, body: bytes) -> str:
    """Publish ``body`` inside a PRODUCER span whose context travels in the headers."""
    attributes = {
        conventions.MESSAGING_SYSTEM: queue.system,
        conventions.MESSAGING_DESTINATION: queue.destination,
        conventions.MESSAGING_OPERATION: "publish",
    }
    with _tracer.start_as_current_span(
        f"{queue.destination} publish", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        message_id = queue.publish(headers, body)
        span.set_attribute(conventions.MESSAGING_MESSAGE_ID, message_id)
        return message_id


def process_traced(
    queue: MessageQueue, handler: Callable[[bytes], None]
) -> Callable[[Delivery], None]:
    """Wrap ``handler`` so each message is processed in a CONSUMER span of its trace."""

    def on_delivery(delivery: Delivery) -> None:
        # Attach the extracted context itself (not only its span) so the journey
        # baggage is current too, and every span the handler causes is stamped with it.
        token = context.attach(propagate.extract(delivery.headers))
        try:
            with _tracer.start_as_current_span(
                f"{queue.destination} process",
                kind=SpanKind.CONSUMER,
                attributes={
                    conventions.MESSAGING_SYSTEM: queue.system,
                    conventions.MESSAGING_DESTINATION: queue.destination,
                    conventions.MESSAGING_OPERATION: "process",
                    conventions.MESSAGING_MESSAGE_ID: delivery.message_id,
                },
            ):
                handler(delivery.body)
        finally:
            context.detach(token)

    return on_delivery
