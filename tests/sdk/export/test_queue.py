"""The span queue: bounded, never blocks, counts what it drops."""

from __future__ import annotations

from threadline.sdk.export.queue import SpanQueue
from threadline.sdk.export.stats import ExportCounters


def test_full_queue_drops_new_spans_and_counts_them() -> None:
    """Past capacity, new spans are dropped and counted as queue_full; queued ones stay."""
    counters = ExportCounters()
    queue = SpanQueue(capacity=3, batch_size=2, counters=counters)
    for index in range(5):
        queue.offer((index,))
    assert len(queue) == 3
    assert counters.snapshot().dropped["queue_full"] == 2
    assert queue.take(10) == [(0,), (1,), (2,)]


def test_a_full_batch_wakes_the_worker() -> None:
    """The batch-ready event is set once a batch's worth of spans is waiting."""
    queue = SpanQueue(capacity=10, batch_size=2, counters=ExportCounters())
    queue.offer((1,))
    assert not queue.batch_ready.is_set()
    queue.offer((2,))
    assert queue.batch_ready.is_set()


def test_take_returns_the_oldest_first_up_to_the_limit() -> None:
    """Batches leave in the order spans ended."""
    queue = SpanQueue(capacity=10, batch_size=5, counters=ExportCounters())
    for index in range(4):
        queue.offer((index,))
    assert queue.take(3) == [(0,), (1,), (2,)]
    assert queue.take(3) == [(3,)]
    assert queue.take(3) == []
