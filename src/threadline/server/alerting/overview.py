"""What the SLO pages and badges show beyond one report: the budget burndown (one
rollup read of nested windows), the burn rates over time (one read per charted
window) and each SLO's state (ok, burning, firing)."""

from __future__ import annotations

from collections.abc import Iterable

from threadline.server.alerting.assess import SloReport
from threadline.server.alerting.state import AlertRecord, AlertState, is_drill
from threadline.server.analysis.burn import MINUTE_NS
from threadline.server.analysis.burndown import (
    SERIES_WINDOWS,
    BurndownPoint,
    BurnPoint,
    SloState,
    burn_series,
    burndown,
    series_steps,
    slo_state,
    suffix_lengths,
)
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.slos import Slo


def burndown_of(store: Store, slo: Slo, now_ns: int) -> list[BurndownPoint]:
    """``slo``'s burndown over its window."""
    lengths = suffix_lengths(slo.window_ns, MINUTE_NS)
    counts = store.slo_counts(IndicatorQuery.of(slo), now_ns, lengths)
    return burndown(now_ns, slo.objective, lengths, counts)


def burn_series_of(store: Store, slo: Slo, now_ns: int) -> list[tuple[str, list[BurnPoint]]]:
    """``slo``'s burn over each of ``SERIES_WINDOWS`` at every such window back from
    ``now_ns``, over the last days (``SERIES_SPAN_NS``), oldest first."""
    query = IndicatorQuery.of(slo)
    found = []
    for name, length in SERIES_WINDOWS:
        counts = store.slo_series(query, now_ns, length, series_steps(length, slo.window_ns))
        found.append((name, burn_series(now_ns, length, slo.objective, counts)))
    return found


def state_of(report: SloReport, records: Iterable[AlertRecord]) -> SloState:
    """The badge of ``report``'s SLO, given the stored alert records (any SLO's)."""
    states = {r.state for r in records if r.slo == report.slo.name and not is_drill(r)}
    return slo_state(
        firing=AlertState.FIRING in states,
        pending=AlertState.PENDING in states,
        remaining=report.budget.remaining,
        burn_1h=report.burn("1h"),
    )
