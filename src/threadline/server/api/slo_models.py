"""Response models of ``/api/slos/{name}`` and ``/api/alerts``, so the OpenAPI schema
describes the answers, and the functions that fill them from the alerting values."""

from __future__ import annotations

from pydantic import BaseModel

from threadline.durations import format_time
from threadline.server.alerting.assess import SloReport
from threadline.server.alerting.state import AlertRecord


class BurnWindow(BaseModel):
    window: str
    events: int
    bad: int
    burn: float | None


class RuleStatus(BaseModel):
    rule: str
    severity: str
    factor: float
    long_burn: float | None
    short_burn: float | None
    short_events: int
    guarded: bool
    firing: bool


class RetryStatus(BaseModel):
    retried: int
    calls: int
    share: float | None
    limit: float
    guarded: bool
    storming: bool


class Alert(BaseModel):
    slo: str
    alert: str
    state: str
    active_since: str
    active_since_ns: int
    firing_since_ns: int | None
    resolved_ns: int | None
    summary: str
    labels: dict[str, str]


class SloStatus(BaseModel):
    slo: dict[str, object]
    evaluated: str
    evaluated_ns: int
    events: int
    bad: int
    error_budget: float
    budget_remaining: float | None
    effective_threshold_ms: float | None
    min_events: int
    burn_rates: list[BurnWindow]
    rules: list[RuleStatus]
    retry: RetryStatus | None
    alerts: list[Alert]


class DeliveryFailure(BaseModel):
    receiver: str
    error: str
    at_ns: int


class Alerts(BaseModel):
    firing: list[Alert]
    pending: list[Alert]
    resolved: list[Alert]
    delivery_failures: list[DeliveryFailure]


def alert(record: AlertRecord) -> Alert:
    return Alert(
        slo=record.slo,
        alert=record.alert,
        state=record.state.value,
        active_since=format_time(record.active_since_ns),
        active_since_ns=record.active_since_ns,
        firing_since_ns=record.firing_since_ns,
        resolved_ns=record.resolved_ns,
        summary=record.summary,
        labels=dict(record.labels),
    )


def slo_status(report: SloReport, alerts: list[AlertRecord]) -> SloStatus:
    threshold = report.effective_threshold_ns
    retry = report.retry
    return SloStatus(
        slo=report.slo.to_json(),
        evaluated=format_time(report.evaluated_ns),
        evaluated_ns=report.evaluated_ns,
        events=report.counts.total,
        bad=report.counts.bad,
        error_budget=report.slo.error_budget,
        budget_remaining=report.budget.remaining,
        effective_threshold_ms=None if threshold is None else threshold / 1e6,
        min_events=report.min_events,
        burn_rates=[
            BurnWindow(window=f.window, events=f.counts.total, bad=f.counts.bad, burn=f.burn)
            for f in report.burns
        ],
        rules=[
            RuleStatus(
                rule=v.rule.name,
                severity=v.rule.severity.value,
                factor=v.rule.factor,
                long_burn=v.long_burn,
                short_burn=v.short_burn,
                short_events=v.short_events,
                guarded=v.guarded,
                firing=v.firing,
            )
            for v in report.verdicts
        ],
        retry=None
        if retry is None
        else RetryStatus(
            retried=retry.retried,
            calls=retry.calls,
            share=retry.share,
            limit=retry.limit,
            guarded=retry.guarded,
            storming=retry.storming,
        ),
        alerts=[alert(r) for r in alerts],
    )
