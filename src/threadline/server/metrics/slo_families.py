"""SLO gauges for ``/metrics``: the evaluator's figures of its last tick.

Per SLO (labels ``slo`` and ``service``): the objective, the share of the error
budget left, the burn rate per window (label ``window``: 5m … 3d), and each alert's
state as a one-hot gauge (label ``alert``: page, ticket, retry-storm; ``state``:
pending, firing, resolved). Read from the last tick's reports, so a scrape costs no
store read of its own and shows what the alerts were decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from threadline.server.alerting.assess import SloReport
from threadline.server.alerting.state import AlertRecord, AlertState, is_drill

SLO_LABELS = ["slo", "service"]


def slo_families(reports: Sequence[SloReport], records: Iterable[AlertRecord]) -> list[Metric]:
    objective = GaugeMetricFamily(
        "threadline_slo_objective_ratio",
        "The SLO's objective (share of good events).",
        labels=SLO_LABELS,
    )
    remaining = GaugeMetricFamily(
        "threadline_slo_budget_remaining_ratio",
        "Share of the SLO's error budget left over its window (below 0: overspent).",
        labels=SLO_LABELS,
    )
    burn = GaugeMetricFamily(
        "threadline_slo_burn_rate",
        "How fast the error budget is spent over a window (1: exactly the budget).",
        labels=[*SLO_LABELS, "window"],
    )
    alerts = GaugeMetricFamily(
        "threadline_slo_alert",
        "1 for an SLO alert's current state (pending, firing, resolved).",
        labels=[*SLO_LABELS, "alert", "state"],
    )
    service_of: dict[str, str] = {}
    for report in reports:
        slo = report.slo
        service_of[slo.name] = slo.service
        objective.add_metric([slo.name, slo.service], slo.objective)
        if report.budget.remaining is not None:
            remaining.add_metric([slo.name, slo.service], report.budget.remaining)
        for figure in report.burns:
            if figure.burn is not None:
                burn.add_metric([slo.name, slo.service, figure.window], figure.burn)
    for record in records:
        service = service_of.get(record.slo)
        # An SLO removed since (its alert resolves on the next tick), or a drill's alert.
        if service is None or is_drill(record):
            continue
        for state in AlertState:
            value = 1.0 if record.state is state else 0.0
            alerts.add_metric([record.slo, service, record.alert, state.value], value)
    return [objective, remaining, burn, alerts]
