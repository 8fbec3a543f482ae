"""Response models of ``GET /api/probes/results`` (so ``/api/openapi.json`` describes
the answer), and the functions that fill them from stored results and alert states."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from threadline.probing.definitions import ScheduledProbe
from threadline.server.alerting.state import AlertRecord
from threadline.server.drills.record import DrillResult


class Problem(BaseModel):
    check: str
    message: str
    step: str | None
    trace_id: str | None
    between: list[str] | None = Field(description="The two services it lies between.")


class Run(BaseModel):
    started_ns: int
    duration_ms: float
    passed: bool
    journey_id: str
    trace_ids: list[str]
    services: list[str]
    summary: str = Field(description="The first broken propagation (else problem) in a line.")
    trace_id: str | None = Field(description="The trace of the first problem naming one.")
    trace_url: str | None
    verdict: str = Field(description="The verdict as `threadline probe` prints it.")
    problems: list[Problem]


class DrillAlert(BaseModel):
    state: str
    summary: str
    active_since_ns: int
    firing_since_ns: int | None
    resolved_ns: int | None


class Drill(BaseModel):
    name: str
    interval: str
    services: list[str]
    steps: int
    running: bool
    passed: int = Field(description="Passed runs in the history shown.")
    failed: int = Field(description="Failed runs in the history shown.")
    last_run: Run | None
    last_failure: Run | None = Field(description="The newest failed run still kept.")
    alert: DrillAlert | None
    history: list[Run] = Field(description="Newest first.")


class Drills(BaseModel):
    drills: list[Drill]


def run(result: DrillResult, trace_url: Callable[[str], str]) -> Run:
    return Run(
        started_ns=result.started_ns,
        duration_ms=round(result.duration_ns / 1e6, 3),
        passed=result.passed,
        journey_id=result.journey_id,
        trace_ids=list(result.trace_ids),
        services=list(result.services),
        summary=result.summary,
        trace_id=result.trace_id,
        trace_url=trace_url(result.trace_id) if result.trace_id else None,
        verdict=result.verdict,
        problems=[
            Problem(
                check=p.check,
                message=p.message,
                step=p.step,
                trace_id=p.trace_id,
                between=list(p.between) if p.between else None,
            )
            for p in result.problems
        ],
    )


def drill(
    probe: ScheduledProbe,
    history: Sequence[DrillResult],
    last_failure: DrillResult | None,
    alert: AlertRecord | None,
    *,
    running: bool,
    trace_url: Callable[[str], str],
) -> Drill:
    return Drill(
        name=probe.name,
        interval=probe.interval,
        services=list(probe.plan.services),
        steps=len(probe.plan.steps),
        running=running,
        passed=sum(1 for r in history if r.passed),
        failed=sum(1 for r in history if not r.passed),
        last_run=run(history[0], trace_url) if history else None,
        last_failure=run(last_failure, trace_url) if last_failure else None,
        alert=None
        if alert is None
        else DrillAlert(
            state=alert.state.value,
            summary=alert.summary,
            active_since_ns=alert.active_since_ns,
            firing_since_ns=alert.firing_since_ns,
            resolved_ns=alert.resolved_ns,
        ),
        history=[run(r, trace_url) for r in history],
    )
