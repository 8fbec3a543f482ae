"""What the SLO evaluator asks a store, and what the store answers (plain values).

Shared by ``storage`` (which answers) and ``alerting`` (which asks), so neither
imports the other's modules for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.slos import Indicator, Slo


@dataclass(frozen=True, slots=True)
class IndicatorQuery:
    """The events of one SLO: which requests, calls or journeys, and what makes one bad.

    ``errors``/``latency``/``journey`` read ``service`` (and ``operation``); ``edge``
    reads the calls from ``service`` to ``callee``. A ``threshold_ns`` makes slower
    events bad (``latency``, and ``edge`` when set). ``reaches`` (``journey`` only)
    makes a journey that took ``operation`` bad when it never went on to that step.
    """

    indicator: Indicator
    service: str
    operation: str | None = None
    reaches: str | None = None
    callee: str | None = None
    threshold_ns: int | None = None
    include_synthetic: bool = False

    @classmethod
    def of(cls, slo: Slo) -> IndicatorQuery:
        return cls(
            indicator=slo.indicator,
            service=slo.service,
            operation=slo.operation,
            reaches=slo.reaches,
            callee=slo.callee,
            threshold_ns=slo.threshold_ns,
            include_synthetic=slo.include_synthetic,
        )


@dataclass(frozen=True, slots=True)
class RetryCounts:
    """Calls on an edge over a window, and how many of them were retries."""

    retried: int
    calls: int


@dataclass(frozen=True, slots=True)
class ExampleRow:
    """A trace that shows an SLO's bad events: failed, or slower than the threshold."""

    trace_id: str
    start_ns: int
    duration_ns: int
    error: bool
