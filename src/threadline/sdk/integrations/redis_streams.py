"""Redis Streams with redis-py: context as fields of the stream entry.

A stream entry is a flat map of fields, so ``traceparent``, ``tracestate`` and
``baggage`` are stored as fields next to the application's own (which must not use
those three names). Producer::

    entry_id = redis_streams.xadd(client, "orders", {"order": "42"})

Consumer (``XREADGROUP`` or ``XREAD`` returns batches)::

    for stream, entries in client.xreadgroup("workers", "w1", {"orders": ">"}, count=10):
        redis_streams.handle_entries(stream, entries, on_entry)

``handle_entries`` opens one ``receive`` span linked to every producer, then runs
``on_entry(entry_id, fields)`` for each entry in a ``process`` span of that entry's
own trace. Entries claimed again after a failed consumer (``XAUTOCLAIM``) pass their
delivery counts from ``XPENDING`` as ``delivery_counts`` to record the attempt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from threadline.conventions import MESSAGING_MESSAGE_ID
from threadline.sdk.integrations.messaging import consumer_span, producer_span, receive_span

if TYPE_CHECKING:
    import redis

SYSTEM: Final = "redis"

Fields = Mapping[Any, Any]
EntryHandler = Callable[[str, Fields], None]


def xadd(client: redis.Redis, stream: str, fields: Mapping[str, Any], **xadd_options: Any) -> str:
    """``XADD`` inside a PRODUCER span whose context rides in the entry; returns the entry id."""
    with producer_span(SYSTEM, stream) as (span, headers):
        entry: dict[Any, Any] = {**fields, **headers}
        entry_id = _text(client.xadd(stream, entry, **xadd_options))
        span.set_attribute(MESSAGING_MESSAGE_ID, entry_id)
    return entry_id


def handle_entries(
    stream: str | bytes,
    entries: Sequence[tuple[Any, Fields]],
    handler: EntryHandler,
    *,
    delivery_counts: Mapping[str, int] | None = None,
    record_receive: bool = True,
) -> None:
    """Run ``handler(entry_id, fields)`` for each entry in a CONSUMER span of the entry's trace.

    With ``record_receive`` the batch gets a ``receive`` span linked to every producer;
    that span starts a trace of its own (a batch has no single parent), so a consumer
    that wants only the producers' traces turns it off. An exception from the handler
    is recorded on that entry's span and re-raised: the caller decides whether to
    acknowledge.
    """
    name = _text(stream)
    if not entries:
        return
    receiving = (
        receive_span(SYSTEM, name, (fields for _, fields in entries))
        if record_receive
        else contextlib.nullcontext()
    )
    with receiving:
        for raw_id, fields in entries:
            entry_id = _text(raw_id)
            with consumer_span(
                SYSTEM,
                name,
                fields,
                message_id=entry_id,
                attempt=(delivery_counts or {}).get(entry_id, 1),
            ):
                handler(entry_id, fields)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
