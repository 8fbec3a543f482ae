"""A bounded FIFO of compact spans that never blocks the thread that adds to it.

``offer`` is a length check and a ``deque.append``: O(1), lock-free (``deque`` appends
and pops are atomic under the GIL), and it cannot raise. When the queue holds
``capacity`` spans the new span is dropped and counted instead. The length check and
the append are two steps, so threads racing at the limit can overshoot it by at most
one span each; every span offered is either queued or counted as dropped. Dropping
logs a warning at most once a minute.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

from threadline.sdk.export.stats import DropReason, ExportCounters
from threadline.sdk.guard import warn_rate_limited

_T = TypeVar("_T")


class SpanQueue(Generic[_T]):
    """Spans (or log records) waiting for the worker; wakes it once a full batch is waiting."""

    def __init__(
        self,
        capacity: int,
        batch_size: int,
        counters: ExportCounters,
        *,
        items: str = "spans",
        setting: str = "queue_size",
    ) -> None:
        self.capacity = capacity
        self._batch_size = batch_size
        self._items: deque[_T] = deque()
        self._counters = counters
        self.batch_ready = threading.Event()
        # Built once: when the queue is full, offer() runs this path for every span.
        # Warned per setting: a full log queue must not silence the span queue's warning.
        self._full_key = f"{setting} full"
        self._full_warning = (
            f"the export queue is full ({capacity} {items}, {setting}); new {items} "
            "are dropped until the endpoint catches up (threadline.stats() counts them)"
        )

    def offer(self, record: _T) -> None:
        items = self._items
        if len(items) >= self.capacity:
            self._counters.add_dropped(DropReason.QUEUE_FULL, 1)
            warn_rate_limited(self._full_key, self._full_warning)
            return
        items.append(record)
        if len(items) >= self._batch_size and not self.batch_ready.is_set():
            self.batch_ready.set()

    def take(self, limit: int) -> list[_T]:
        """Up to ``limit`` of the oldest spans, removed from the queue."""
        items = self._items
        batch: list[_T] = []
        popleft = items.popleft
        for _ in range(min(limit, len(items))):
            batch.append(popleft())
        return batch

    def __len__(self) -> int:
        return len(self._items)
