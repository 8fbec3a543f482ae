"""Response models of ``/api/slos/{name}``, ``/api/slo-status``, ``/api/alerts`` and
``/api/slos/{name}/examples``, so the OpenAPI schema describes the answers, and the
functions that fill them from the alerting values."""

from __future__ import annotations

from pydantic import BaseModel, Field

from threadline.durations import format_time
from threadline.server.alerting.assess import SloReport
from threadline.server.alerting.common import Shared
from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.analysis import burndown as burndown_analysis
from threadline.server.analysis.burn import BURN_WINDOWS
from threadline.server.slo_queries import ExampleRow

_WINDOW_NAMES = {length: name for name, length in BURN_WINDOWS}


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
    windows: list[str] = Field(description="The rule's long window, then its short one.")


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


class BurndownPoint(BaseModel):
    at_ns: int
    bad: int = Field(description="Bad events from the window's start to this moment.")
    remaining: float | None = Field(description="Share of the window's budget left.")


class BurnPoint(BaseModel):
    at_ns: int = Field(description="End of the window the burn is over.")
    events: int
    bad: int
    burn: float | None


class BurnSeries(BaseModel):
    window: str = Field(description="The window each burn is over (1h, 6h).")
    points: list[BurnPoint] = Field(
        description="The burn over the window at every such window back from now, oldest first."
    )


class SloStatus(BaseModel):
    slo: dict[str, object]
    state: str = Field(description="ok, burning or firing (what the SLO's badges show).")
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
    burndown: list[BurndownPoint] = Field(description="Budget left over the window, oldest first.")
    burn_series: list[BurnSeries] = Field(
        description="The 1h and 6h burn rates over time, over the last days."
    )


class SloSummary(BaseModel):
    name: str
    service: str
    operation: str | None
    reaches: str | None = Field(
        default=None, description="A funnel step SLO's step: journeys should go on to it."
    )
    callee: str | None
    indicator: str
    objective: float
    window: str
    state: str = Field(description="ok, burning or firing.")
    budget_remaining: float | None
    burn_1h: float | None
    firing: list[str] = Field(description="The SLO's alerts firing now (page, ticket, …).")


class SloSummaries(BaseModel):
    slos: list[SloSummary]


class ExampleTrace(BaseModel):
    trace_id: str
    start_ns: int
    duration_ms: float
    error: bool


class SharedValue(BaseModel):
    key: str
    value: str
    bad_share: float = Field(description="Share of the bad requests with this value.")
    baseline_share: float = Field(description="Share of the other requests with it.")


class ErrorStart(BaseModel):
    service: str
    operation: str
    bad_share: float = Field(description="Share of the bad requests whose errors start here.")


class SloExamples(BaseModel):
    window_start_ns: int
    window_end_ns: int
    examples: list[ExampleTrace] = Field(
        description="Failed (or, for latency, the slowest) traces of the window."
    )
    bad: str = Field(description="What the bad requests are: failing, or slow.")
    in_common: list[SharedValue] = Field(description="Values the bad requests have in common.")
    errors_start: list[ErrorStart] = Field(description="Where their errors start.")


class DeliveryFailure(BaseModel):
    receiver: str
    error: str
    at_ns: int


class EvaluatorLease(BaseModel):
    """Which server process evaluates the SLOs and runs the drills (``server.lease``)."""

    holder: str = Field(description="hostname:pid:random of the process holding the lease")
    since_ns: int
    expires_ns: int
    expired: bool = Field(description="no process renewed it in time; the next tick takes it")
    this_server: bool = Field(description="whether the server answering holds it")


class Alerts(BaseModel):
    firing: list[Alert]
    pending: list[Alert]
    resolved: list[Alert]
    delivery_failures: list[DeliveryFailure]
    evaluator: EvaluatorLease | None = Field(
        default=None, description="the evaluator's lease; null before any process took it"
    )


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


def slo_summary(
    report: SloReport, alerts: list[AlertRecord], state: burndown_analysis.SloState
) -> SloSummary:
    slo = report.slo
    return SloSummary(
        name=slo.name,
        service=slo.service,
        operation=slo.operation,
        reaches=slo.reaches,
        callee=slo.callee,
        indicator=slo.indicator.value,
        objective=slo.objective,
        window=slo.window,
        state=state.value,
        budget_remaining=report.budget.remaining,
        burn_1h=report.burn("1h"),
        firing=[a.alert for a in alerts if a.slo == slo.name and a.state is AlertState.FIRING],
    )


def examples(rows: list[ExampleRow], start_ns: int, end_ns: int, found: Shared) -> SloExamples:
    return SloExamples(
        window_start_ns=start_ns,
        window_end_ns=end_ns,
        examples=[
            ExampleTrace(
                trace_id=r.trace_id,
                start_ns=r.start_ns,
                duration_ms=r.duration_ns / 1e6,
                error=r.error,
            )
            for r in rows
        ],
        bad=found.noun,
        in_common=[
            SharedValue(
                key=a.key, value=a.value, bad_share=a.focus_share, baseline_share=a.baseline_share
            )
            for a in found.attributes
        ],
        errors_start=[
            ErrorStart(service=e.service, operation=e.operation, bad_share=e.focus_share)
            for e in found.error_sources
        ],
    )


def slo_status(
    report: SloReport,
    alerts: list[AlertRecord],
    *,
    state: burndown_analysis.SloState,
    burndown: list[burndown_analysis.BurndownPoint],
    burn_series: list[tuple[str, list[burndown_analysis.BurnPoint]]],
) -> SloStatus:
    threshold = report.effective_threshold_ns
    retry = report.retry
    return SloStatus(
        slo=report.slo.to_json(),
        state=state.value,
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
                windows=[
                    _WINDOW_NAMES.get(v.rule.long_ns, v.rule.name),
                    _WINDOW_NAMES.get(v.rule.short_ns, ""),
                ],
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
        burndown=[BurndownPoint(at_ns=p.at_ns, bad=p.bad, remaining=p.remaining) for p in burndown],
        burn_series=[
            BurnSeries(
                window=window,
                points=[
                    BurnPoint(at_ns=p.at_ns, events=p.counts.total, bad=p.counts.bad, burn=p.burn)
                    for p in points
                ],
            )
            for window, points in burn_series
        ],
    )
