"""What an alert's bad requests have in common, and where their errors start.

The existing comparison (``Store.trace_groups`` and ``analysis.tail_latency.explain``)
run on a bounded sample of the burning window: the failed (or, for latency, the
slowest) requests of the SLO's target against the rest. Its top findings become two
annotation lines; a failure to compute them leaves the alert without them, never
without the alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.analysis.tail_latency import (
    MIN_SUPPORT,
    AttributeLift,
    ErrorSource,
    explain,
)
from threadline.server.storage.base import Store, StoreError
from threadline.slos import Indicator, Slo

logger = logging.getLogger(__name__)

# Traces per group the comparison reads: enough for the significance tests, bounded
# so an alert never costs more than a short read of the window's spans.
SAMPLE: Final = 500
MAX_ATTRIBUTES: Final = 100
# Findings per line: a page is read on a phone.
TOP: Final = 3


@dataclass(frozen=True, slots=True)
class Findings:
    in_common: str = ""
    errors_start: str = ""


@dataclass(frozen=True, slots=True)
class Shared:
    """The findings as values (for the SLO page; the API masks sensitive values)."""

    noun: str = "failing"
    attributes: tuple[AttributeLift, ...] = ()
    error_sources: tuple[ErrorSource, ...] = ()


def findings(store: Store, slo: Slo, window: TimeWindow) -> Findings:
    """The top values the bad requests share and the operations their errors start in."""
    found = shared(store, slo, window)
    noun = found.noun
    common = "; ".join(
        f"{a.key}={a.value} on {a.focus_share:.0%} of {noun} requests"
        f" vs {a.baseline_share:.0%} of the rest"
        for a in found.attributes
    )
    starts = "; ".join(
        f"{e.service} {e.operation} in {e.focus_share:.0%} of {noun} requests"
        for e in found.error_sources
    )
    return Findings(in_common=common, errors_start=starts)


def shared(store: Store, slo: Slo, window: TimeWindow) -> Shared:
    """``findings`` as values; empty when the comparison fails (logged)."""
    if slo.indicator is Indicator.EDGE:
        target = Target(service=slo.callee)  # the called service's failing requests
    else:
        target = Target(service=slo.service, operation=slo.operation)
    split = Split.SLOW if slo.indicator is Indicator.LATENCY else Split.FAILED
    try:
        groups = store.trace_groups(
            target,
            split,
            window,
            min_support=MIN_SUPPORT,
            max_attributes=MAX_ATTRIBUTES,
            sample=SAMPLE,
        )
    except (StoreError, ValueError):
        logger.exception("comparing the traces of SLO %s failed", slo.name)
        return Shared()
    explanation = explain(groups, min_support=MIN_SUPPORT, limit=TOP)
    return Shared(
        noun="slow" if split is Split.SLOW else "failing",
        attributes=tuple(explanation.attributes),
        error_sources=tuple(explanation.error_sources),
    )
