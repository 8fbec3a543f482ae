"""Kafka record headers: context as ``(name, bytes)`` pairs, for any Kafka client.

confluent-kafka, kafka-python and aiokafka all take and return record headers as a
list of ``(str, bytes)`` pairs, so one pair of helpers serves them all::

    with kafka.sending("orders") as headers:
        producer.produce("orders", value, headers=headers)

    with kafka.processing(record.topic, record.headers, message_id=f"{partition}:{offset}"):
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from opentelemetry.trace import Span

from threadline.sdk.integrations.codec import as_byte_pairs
from threadline.sdk.integrations.messaging import consumer_span, producer_span

SYSTEM: Final = "kafka"


@contextmanager
def sending(topic: str) -> Iterator[list[tuple[str, bytes]]]:
    """A PRODUCER span for one record; yields the headers to send it with."""
    with producer_span(SYSTEM, topic) as (_, headers):
        yield as_byte_pairs(headers)


@contextmanager
def processing(
    topic: str,
    headers: Iterable[tuple[str, bytes | str]] | None,
    *,
    message_id: str | None = None,
) -> Iterator[Span]:
    """A CONSUMER span (current in the block) for one record, in its producer's trace."""
    with consumer_span(SYSTEM, topic, list(headers or ()), message_id=message_id) as span:
        yield span
