"""PRODUCER and CONSUMER spans for a message hop, following the messaging conventions.

Every broker module builds on three context managers:

- :func:`producer_span` — a PRODUCER span ``send <destination>`` and the headers
  (trace context + journey baggage) to put on the message;
- :func:`consumer_span` — makes the context that arrived with one message current
  (so its journey is current too) and opens a CONSUMER span ``process <destination>``
  under the producer span: the consumer continues the producer's trace;
- :func:`receive_span` — one CONSUMER span ``receive <destination>`` for a batch,
  linked to the producer span of each message it received.

Attributes are those of the OpenTelemetry messaging semantic conventions
(``messaging.system``, ``messaging.destination.name``, ``messaging.operation.type``,
``messaging.operation.name``, ``messaging.message.id``, ``messaging.batch.message_count``).
A redelivered or retried message is processed under the same producer span, so it
stays in its trace; the delivery number (1 for the first delivery) is recorded as
``threadline.delivery.attempt``, because the conventions define no broker-neutral
attribute for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from opentelemetry import context, trace
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from threadline import conventions
from threadline.sdk.integrations.codec import context_from, context_headers

MESSAGING_OPERATION_NAME: Final = "messaging.operation.name"
MESSAGING_BATCH_COUNT: Final = "messaging.batch.message_count"
DELIVERY_ATTEMPT: Final = "threadline.delivery.attempt"

SEND: Final = "send"
RECEIVE: Final = "receive"
PROCESS: Final = "process"

_tracer = trace.get_tracer("threadline.messaging")


@contextmanager
def producer_span(
    system: str,
    destination: str,
    *,
    operation_name: str = "publish",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[tuple[Span, dict[str, str]]]:
    """A current PRODUCER span, and the headers that carry it and the journey."""
    with _tracer.start_as_current_span(
        f"{operation_name} {destination}",
        kind=SpanKind.PRODUCER,
        attributes=_hop_attributes(system, destination, SEND, operation_name, attributes),
    ) as span:
        yield span, context_headers()


@contextmanager
def consumer_span(
    system: str,
    destination: str,
    headers: object,
    *,
    message_id: str | None = None,
    attempt: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A current CONSUMER span continuing the trace and journey ``headers`` carry.

    An exception raised in the block is recorded on the span, which is marked as an
    error, and re-raised.
    """
    extra: dict[str, AttributeValue] = dict(attributes or {})
    if message_id is not None:
        extra[conventions.MESSAGING_MESSAGE_ID] = message_id
    if attempt is not None:
        extra[DELIVERY_ATTEMPT] = attempt
    token = context.attach(context_from(headers))
    try:
        with _tracer.start_as_current_span(
            f"{PROCESS} {destination}",
            kind=SpanKind.CONSUMER,
            attributes=_hop_attributes(system, destination, PROCESS, PROCESS, extra),
        ) as span:
            yield span
    finally:
        context.detach(token)


@contextmanager
def receive_span(system: str, destination: str, batch_headers: Iterable[object]) -> Iterator[Span]:
    """A current CONSUMER span for receiving a batch, linked to each message's producer."""
    batch = list(batch_headers)
    links = []
    for headers in batch:
        producer = trace.get_current_span(context_from(headers)).get_span_context()
        if producer.is_valid:
            links.append(Link(producer))
    with _tracer.start_as_current_span(
        f"{RECEIVE} {destination}",
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=_hop_attributes(
            system, destination, RECEIVE, RECEIVE, {MESSAGING_BATCH_COUNT: len(batch)}
        ),
    ) as span:
        yield span


def _hop_attributes(
    system: str,
    destination: str,
    operation_type: str,
    operation_name: str,
    extra: Mapping[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    """The messaging conventions' attributes of a hop span, then ``extra`` (which wins)."""
    return {
        conventions.MESSAGING_SYSTEM: system,
        conventions.MESSAGING_DESTINATION: destination,
        conventions.MESSAGING_OPERATION: operation_type,
        MESSAGING_OPERATION_NAME: operation_name,
        **(extra or {}),
    }
