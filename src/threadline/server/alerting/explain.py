"""Turn an alert's record and its SLO's report into the ``AlertNotice`` receivers get.

Labels identify the alert (``alertname``, ``slo``, ``service``, ``severity``, plus
``indicator`` and, for an edge, ``callee``); annotations explain it: a one-line
summary with the burn that fired it, every burn window, the budget left, the SLO's
link and the example traces' links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from threadline.server.alerting.assess import RETRY_STORM, SloReport
from threadline.server.alerting.notice import AlertNotice, AlertStatus, ExampleTrace
from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.analysis.burn import RuleVerdict, Severity
from threadline.server.slo_queries import ExampleRow
from threadline.slos import Indicator

BURN_ALERT: Final = "SLOBurnRate"
RETRY_ALERT: Final = "SLORetryStorm"


def slo_url(base_url: str, name: str) -> str:
    """The SLO's UI page (burndown, burn per window, alerts, example traces)."""
    return f"{base_url}/slos/{quote(name, safe='')}"


def trace_url(base_url: str, trace_id: str) -> str:
    return f"{base_url}/trace/{trace_id}"


def labels(report: SloReport, alert: str) -> dict[str, str]:
    slo = report.slo
    found = {
        "alertname": RETRY_ALERT if alert == RETRY_STORM else BURN_ALERT,
        "slo": slo.name,
        "service": slo.service,
        # A retry storm is urgent: retries multiply load on a callee already failing.
        "severity": Severity.PAGE.value if alert == RETRY_STORM else alert,
        "indicator": slo.indicator.value,
    }
    if slo.callee is not None:
        found["callee"] = slo.callee
    return found


def summary(report: SloReport, alert: str, verdict: RuleVerdict | None) -> str:
    """One line saying what burns and how fast (stored with the alert's state)."""
    slo = report.slo
    what = _what(report)
    if alert == RETRY_STORM and report.retry is not None:
        share = report.retry.share or 0.0
        return (
            f"{what}: {share:.0%} of calls in the last 5m were retries"
            f" ({report.retry.retried} of {report.retry.calls}; limit {report.retry.limit:.0%})"
        )
    if verdict is None:
        return f"{what}: burn 1h {_burn(report.burn('1h'))}, 5m {_burn(report.burn('5m'))}"
    long_name, short_name = _window_name(verdict.rule.long_ns), _window_name(verdict.rule.short_ns)
    return (
        f"{what}: the error budget of {slo.name} ({slo.objective:.4g} over {slo.window}) burns"
        f" {_burn(verdict.long_burn)}x over {long_name} and {_burn(verdict.short_burn)}x over"
        f" {short_name} (alert at {verdict.rule.factor:g}x)"
    )


def notice(
    report: SloReport | None,
    record: AlertRecord,
    *,
    base_url: str,
    examples: Sequence[ExampleRow] = (),
    fallback_labels: dict[str, str] | None = None,
) -> AlertNotice:
    """The notice of ``record`` (firing or resolved). ``report`` is None for an alert
    whose SLO was removed: it resolves with the labels it had (``fallback_labels``)."""
    firing = record.state is AlertState.FIRING
    found_labels = (
        labels(report, record.alert) if report is not None else dict(fallback_labels or {})
    )
    annotations = {"summary": record.summary, "slo_url": slo_url(base_url, record.slo)}
    if report is not None:
        annotations["burn_rates"] = " ".join(f"{f.window}={_burn(f.burn)}" for f in report.burns)
        remaining = report.budget.remaining
        annotations["budget_remaining"] = "n/a" if remaining is None else f"{remaining:.1%}"
        annotations["description"] = (
            f"{record.summary}. Burn per window: {annotations['burn_rates']}."
            f" Error budget left over {report.slo.window}: {annotations['budget_remaining']}"
            f" ({report.counts.bad} bad of {report.counts.total} events)."
        )
    traces = tuple(
        ExampleTrace(
            trace_id=row.trace_id,
            url=trace_url(base_url, row.trace_id),
            duration_ms=row.duration_ns / 1e6,
            error=row.error,
        )
        for row in examples
    )
    if traces:
        annotations["example_traces"] = " ".join(t.url for t in traces)
    return AlertNotice(
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        labels=found_labels,
        annotations=annotations,
        starts_at_ns=record.firing_since_ns or record.active_since_ns,
        generator_url=slo_url(base_url, record.slo),
        ends_at_ns=None if firing else record.resolved_ns,
        example_traces=traces,
    )


def _what(report: SloReport) -> str:
    slo = report.slo
    if slo.indicator is Indicator.EDGE:
        return f"calls from {slo.service} to {slo.callee}"
    target = slo.service if slo.operation is None else f"{slo.service} {slo.operation}"
    if slo.reaches is not None:
        return f"journeys going on from {target} to {slo.reaches}"
    noun = {Indicator.JOURNEY: "journeys through", Indicator.LATENCY: "latency of"}
    return f"{noun.get(slo.indicator, 'requests of')} {target}"


def _burn(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _window_name(length_ns: int) -> str:
    minutes = length_ns // 60_000_000_000
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
