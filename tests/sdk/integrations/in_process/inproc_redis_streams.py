"""Redis Streams (real server on 127.0.0.1:6379): context in entry fields, batch receive with
links, reclaimed entries keep their trace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.trace import SpanKind

import threadline
from sdk.integrations.conftest import require_broker
from support.missing import require_module
from threadline.sdk.integrations import redis_streams
from threadline.sdk.integrations.messaging import DELIVERY_ATTEMPT
from threadline.testing import SpanCapture, trace_id_of

redis = require_module("redis")


@pytest.fixture
def client(unique_name: str) -> Iterator[Any]:
    require_broker("redis")
    connection = redis.Redis(host="127.0.0.1", port=6379)
    try:
        connection.xgroup_create(unique_name, "workers", id="0", mkstream=True)
        yield connection
    finally:
        connection.delete(unique_name)
        connection.close()


def test_each_entry_is_processed_in_its_producers_trace(
    threadline_spans: SpanCapture, client: Any, unique_name: str
) -> None:
    """Two entries from two journeys read in one batch: one receive span linked to both, each
    process span in its own producer's trace with its own journey."""
    ids = []
    for session in ("s-r1", "s-r2"):
        with threadline.journey(session_id=session):
            ids.append(redis_streams.xadd(client, unique_name, {"order": session}))
    seen: list[tuple[str, str | None]] = []

    def handle(entry_id: str, fields: Any) -> None:
        seen.append((entry_id, baggage.get_baggage("session.id")))  # type: ignore[arg-type]

    for stream, entries in client.xreadgroup("workers", "w1", {unique_name: ">"}, count=10):
        redis_streams.handle_entries(stream, entries, handle)
    assert seen == [(ids[0], "s-r1"), (ids[1], "s-r2")]

    producers = threadline_spans.named(f"publish {unique_name}")
    processes = threadline_spans.named(f"process {unique_name}")
    receive = threadline_spans.named(f"receive {unique_name}")[0]
    assert receive.kind == SpanKind.CONSUMER
    assert {link.context.span_id for link in receive.links} == {
        p.context.span_id for p in producers
    }
    for producer, process in zip(producers, processes, strict=True):
        assert process.parent is not None
        assert process.parent.span_id == producer.context.span_id
        assert trace_id_of(process) == trace_id_of(producer)
        attributes = process.attributes or {}
        assert attributes["session.id"] == (producer.attributes or {})["session.id"]
        assert attributes["messaging.system"] == "redis"
        assert attributes["messaging.destination.name"] == unique_name
        assert attributes["messaging.message.id"] in ids


def test_reclaimed_entry_stays_in_its_trace_as_attempt_two(
    threadline_spans: SpanCapture, client: Any, unique_name: str
) -> None:
    """An entry whose first consumer failed is claimed by another and processed in the same
    trace, recorded as attempt 2."""
    with threadline.journey(session_id="s-claim"):
        entry_id = redis_streams.xadd(client, unique_name, {"order": "x"})

    def fail(entry_id: str, fields: Any) -> None:
        raise RuntimeError("worker crashed")

    for stream, entries in client.xreadgroup("workers", "w1", {unique_name: ">"}, count=1):
        with pytest.raises(RuntimeError):
            redis_streams.handle_entries(stream, entries, fail)
    _, claimed, _ = client.xautoclaim(unique_name, "workers", "w2", min_idle_time=0)
    pending = client.xpending_range(unique_name, "workers", "-", "+", 10)
    counts = {p["message_id"].decode(): p["times_delivered"] for p in pending}
    redis_streams.handle_entries(unique_name, claimed, lambda *_: None, delivery_counts=counts)

    processes = threadline_spans.named(f"process {unique_name}")
    assert [(p.attributes or {})[DELIVERY_ATTEMPT] for p in processes] == [1, 2]
    assert not processes[0].status.is_ok
    assert {trace_id_of(p) for p in processes} == {
        trace_id_of(threadline_spans.named(f"publish {unique_name}")[0])
    }
    assert all((p.attributes or {})["messaging.message.id"] == entry_id for p in processes)
