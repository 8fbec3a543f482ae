"""Counters for ``/metrics`` from the rollups: monotonic, and cheap to read at any uptime.

Prometheus wants cumulative counters and computes rates itself; the rollups hold
per-minute sums. Summing every minute at each scrape would cost more as data
grows, so the sums are kept in two parts:

- **sealed** minutes, older than ``SETTLE_MINUTES``, are added once into totals
  held in memory and never read again;
- the **live** minutes since then are read at every scrape (a spans arriving late,
  within the settle time, still count) and added to the sealed totals.

A scrape therefore reads ``SETTLE_MINUTES`` of rollups plus the minutes sealed since
the previous scrape. Counting starts ``SETTLE_MINUTES`` before the server started
(``origin_minute``), so a restart resets the counters, which Prometheus' ``rate``
expects of any process. Spans that arrive more than ``SETTLE_MINUTES`` after they
started, into a sealed minute, are left out of the counters (they are in the
rollups and every other view).

A series never goes down: deletions (tail sampling drops a trace seconds after it
arrived) may lower a live minute after a scrape counted it, and a counter that
falls reads as a restart. Each value shown is the larger of the new sum and the
last one shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

from threadline.server.analysis.latency_bounds import SLOTS
from threadline.server.metric_rows import MetricRows

MINUTE_NS: Final = 60_000_000_000
NS_PER_S: Final = 1e9
# Spans reach the server seconds after they end (the SDK exports every second and
# retries for well under ten minutes); a longer settle time costs every scrape more.
SETTLE_MINUTES: Final = 10

K = TypeVar("K")
OperationKey = tuple[str, str]  # service, operation
EdgeKey = tuple[str, str, str]  # caller, callee, kind


@dataclass(frozen=True, slots=True)
class SeriesValue:
    """One histogram series: counts per latency slot, errors, and the duration sum (s)."""

    slots: tuple[int, ...]
    errors: int
    duration_sum_s: float

    @property
    def count(self) -> int:
        return sum(self.slots)


@dataclass(frozen=True, slots=True)
class Snapshot:
    operations: dict[OperationKey, SeriesValue]
    edges: dict[EdgeKey, SeriesValue]
    origin_minute: int


class _Sum:
    __slots__ = ("duration_ns", "errors", "slots")

    def __init__(self) -> None:
        self.slots = [0] * SLOTS
        self.errors = 0
        self.duration_ns = 0.0

    def add(self, slot: int, count: int, errors: int, duration_ns: float) -> None:
        self.slots[slot] += count
        self.errors += errors
        self.duration_ns += duration_ns

    def copy(self) -> _Sum:
        other = _Sum()
        other.slots = list(self.slots)
        other.errors = self.errors
        other.duration_ns = self.duration_ns
        return other


def _add(
    operations: dict[OperationKey, _Sum], edges: dict[EdgeKey, _Sum], rows: MetricRows
) -> None:
    for op in rows.operations:
        key = (op.service, op.operation)
        operations.setdefault(key, _Sum()).add(op.slot, op.requests, op.errors, op.duration_sum_ns)
    for edge in rows.edges:
        edge_key = (edge.caller, edge.callee, edge.kind)
        edges.setdefault(edge_key, _Sum()).add(
            edge.slot, edge.calls, edge.errors, edge.duration_sum_ns
        )


class CumulativeRollups:
    """Turns per-minute rollup reads into monotonic totals (see the module docstring).

    ``read(first_minute, last_minute)`` is ``Store.metric_rows``.
    """

    def __init__(
        self,
        read: Callable[[int, int], MetricRows],
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        settle_minutes: int = SETTLE_MINUTES,
    ) -> None:
        if settle_minutes < 1:
            raise ValueError(f"settle_minutes must be at least 1, got {settle_minutes}")
        self._read = read
        self._clock_ns = clock_ns
        self._settle = settle_minutes
        self.origin_minute = clock_ns() // MINUTE_NS - settle_minutes
        self._sealed_to = self.origin_minute
        self._sealed_ops: dict[OperationKey, _Sum] = {}
        self._sealed_edges: dict[EdgeKey, _Sum] = {}
        self._shown_ops: dict[OperationKey, SeriesValue] = {}
        self._shown_edges: dict[EdgeKey, SeriesValue] = {}
        self._lock = threading.Lock()  # one scrape computes at a time

    def snapshot(self) -> Snapshot:
        with self._lock:
            now_minute = self._clock_ns() // MINUTE_NS
            seal_to = now_minute - self._settle
            if seal_to > self._sealed_to:
                _add(self._sealed_ops, self._sealed_edges, self._read(self._sealed_to, seal_to))
                self._sealed_to = seal_to
            operations = {k: v.copy() for k, v in self._sealed_ops.items()}
            edges = {k: v.copy() for k, v in self._sealed_edges.items()}
            _add(operations, edges, self._read(self._sealed_to, now_minute + 1))
            return Snapshot(
                operations=_monotonic(operations, self._shown_ops),
                edges=_monotonic(edges, self._shown_edges),
                origin_minute=self.origin_minute,
            )


def _monotonic(current: dict[K, _Sum], shown: dict[K, SeriesValue]) -> dict[K, SeriesValue]:
    """Each series at least as high as last shown; ``shown`` is updated."""
    # A series missing from ``current`` (its minutes were deleted) keeps its last value.
    keys: Iterable[K] = current
    for key in keys:
        now = current[key]
        before = shown.get(key)
        value = SeriesValue(
            tuple(max(0, n) for n in now.slots), max(0, now.errors), now.duration_ns / NS_PER_S
        )
        if before is not None:
            value = SeriesValue(
                tuple(max(a, b) for a, b in zip(value.slots, before.slots, strict=True)),
                max(value.errors, before.errors),
                max(value.duration_sum_s, before.duration_sum_s),
            )
        shown[key] = value
    return dict(shown)
