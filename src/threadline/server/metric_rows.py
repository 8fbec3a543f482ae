"""What the store hands ``/metrics``: rollup sums per latency slot, and example traces.

Slots are the spans between ``/metrics`` histogram bounds
(``analysis/latency_bounds.py``). Rows cover a range of whole minutes; the caller
adds ranges up into counters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OperationSlot:
    """Entry spans of one service × operation in one latency slot."""

    service: str
    operation: str
    slot: int
    requests: int
    errors: int
    duration_sum_ns: int


@dataclass(frozen=True, slots=True)
class EdgeSlot:
    """Calls of one caller → callee edge (``kind`` an ``EdgeKind`` value) in one slot.

    ``duration_sum_ns`` is estimated from the histogram (each call counted at its
    sketch bucket's value, within 1%): the edge rollups keep no exact sum.
    """

    caller: str
    callee: str
    kind: str
    slot: int
    calls: int
    errors: int
    duration_sum_ns: float


@dataclass(frozen=True, slots=True)
class SlotExemplar:
    """One stored trace whose entry span of service × operation fell in ``slot``."""

    service: str
    operation: str
    slot: int
    trace_id: str
    duration_ns: int
    start_ns: int


@dataclass(frozen=True, slots=True)
class MetricRows:
    """The rollups of minutes ``[first_minute, last_minute)``, by slot."""

    operations: tuple[OperationSlot, ...]
    edges: tuple[EdgeSlot, ...]
