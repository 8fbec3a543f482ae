"""One SLO at one moment: budget, burn per window, and which alerts' conditions hold.

Two store reads per SLO (``slo_counts`` for the budget window and every burn window
at once, and for an edge ``retry_counts``), both from rollups; the figures are then
``analysis.burn``'s pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from threadline.server.analysis import burn
from threadline.server.analysis.burn import (
    BURN_WINDOWS,
    WORKBOOK_RULES,
    Budget,
    Counts,
    RuleVerdict,
    Severity,
)
from threadline.server.analysis.sketch import GAMMA, bucket_index
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.slos import Indicator, Slo

RETRY_STORM: Final = "retry-storm"
# The window a retry storm is judged over: storms start suddenly and must be seen
# while they last; the low-traffic guard applies to it as to a burn rule's short window.
RETRY_WINDOW: Final = ("5m", 5 * burn.MINUTE_NS)


@dataclass(frozen=True, slots=True)
class BurnFigure:
    window: str
    counts: Counts
    burn: float | None


@dataclass(frozen=True, slots=True)
class RetryFigure:
    """Retries on an edge over ``RETRY_WINDOW``, against the share allowed."""

    retried: int
    calls: int
    share: float | None
    limit: float
    guarded: bool

    @property
    def storming(self) -> bool:
        return not self.guarded and self.share is not None and self.share > self.limit


@dataclass(frozen=True, slots=True)
class SloReport:
    slo: Slo
    evaluated_ns: int
    counts: Counts  # over the SLO's window
    budget: Budget
    burns: tuple[BurnFigure, ...]
    verdicts: tuple[RuleVerdict, ...]
    min_events: int
    retry: RetryFigure | None = None

    @property
    def effective_threshold_ns(self) -> float | None:
        """What the rollups compare durations with: the threshold's bucket's upper bound."""
        threshold = self.slo.threshold_ns
        return None if threshold is None else float(GAMMA ** bucket_index(threshold))

    def burn(self, window: str) -> float | None:
        return next((f.burn for f in self.burns if f.window == window), None)

    def conditions(self) -> dict[str, tuple[bool, RuleVerdict | None]]:
        """Per alert (``page``, ``ticket``, ``retry-storm``): whether its condition holds,
        and the burn rule that makes it hold."""
        firing = burn.severities_firing(self.verdicts)
        found: dict[str, tuple[bool, RuleVerdict | None]] = {
            severity.value: (firing[severity] is not None, firing[severity])
            for severity in Severity
        }
        if self.retry is not None:
            found[RETRY_STORM] = (self.retry.storming, None)
        return found


def assess(
    store: Store, slo: Slo, now_ns: int, *, min_events: int, retry_share: float
) -> SloReport:
    """``slo`` at ``now_ns``; ``min_events`` and ``retry_share`` are the server's
    defaults, which the SLO's own ``min_events`` / ``max_retry_share`` override."""
    guard = slo.min_events if slo.min_events is not None else min_events
    lengths = [slo.window_ns, *(length for _, length in BURN_WINDOWS)]
    counts = store.slo_counts(IndicatorQuery.of(slo), now_ns, lengths)
    per_length = dict(zip(lengths[1:], counts[1:], strict=True))
    burns = tuple(
        BurnFigure(name, per_length[length], burn.burn_rate(per_length[length], slo.objective))
        for name, length in BURN_WINDOWS
    )
    verdicts = tuple(burn.judge(rule, per_length, slo.objective, guard) for rule in WORKBOOK_RULES)
    retry = None
    if slo.indicator is Indicator.EDGE and slo.callee is not None:
        found = store.retry_counts(slo.service, slo.callee, now_ns, [RETRY_WINDOW[1]])[0]
        retry = RetryFigure(
            retried=found.retried,
            calls=found.calls,
            share=burn.retry_share(found.retried, found.calls),
            limit=slo.max_retry_share if slo.max_retry_share is not None else retry_share,
            guarded=found.calls < guard,
        )
    return SloReport(
        slo=slo,
        evaluated_ns=now_ns,
        counts=counts[0],
        budget=burn.budget(counts[0], slo.objective),
        burns=burns,
        verdicts=verdicts,
        min_events=guard,
        retry=retry,
    )
