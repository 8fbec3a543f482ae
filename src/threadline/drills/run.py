"""Running a fault drill: probe traffic before, during and after a fault, then the report.

The phases, in order:

1. **before** (``before_s``): probe journeys flow through the healthy fleet; their
   traces name the services to watch (with the plan's own services) and prove the
   probe passes at all. Each service's last SDK report is the baseline.
2. **during** (``duration_s``): the fault is on while the journeys keep flowing.
3. **after** (``after_s``): the fault is off; the journeys keep flowing so every SDK
   has spans to export and counters that moved, hence a fresh report.
4. **settle**: the drill waits (at most ``settle_s``) until every service has
   reported after the traffic stopped and at least ``grace_s`` after the fault
   ended (the SDK's retry deadline: batches the fault held are exported or dropped
   by then), with nothing queued and counters that held still between two reads,
   then judges every journey's traces and compares the reports (``report``).

Journeys are sent one after another, at most one per ``interval_s`` and at most
``MAX_JOURNEYS_PER_PHASE`` per phase, so a drill adds a bounded, known load. Reading
the server is the caller's: ``fetch`` (a trace's spans) and ``sdk_report`` (a
service's ``/api/services/{name}/sdk`` answer), as ``threadline probe`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.drills.report import (
    DrillReport,
    PhaseLatency,
    phase_latency,
    phase_propagation,
    service_cost,
)
from threadline.drills.scenarios import Fault
from threadline.probing.plan import Plan
from threadline.probing.runner import FetchTrace, new_journey_id, send_step, wait_for_traces
from threadline.probing.verdict import ProbeSpan, StepOutcome, Verdict, judge

# A phase sends at most this many journeys: a drill is a test, not load.
MAX_JOURNEYS_PER_PHASE: Final = 200
# Two reads of the SDK reports this far apart that agree mean the counters settled.
SETTLE_POLL_S: Final = 1.0

Traces = dict[str, tuple[ProbeSpan, ...]]
# A service's ``/api/services/{name}/sdk`` answer (JSON); None when it has none.
SdkReport = Callable[[str], Mapping[str, object] | None]


@dataclass(frozen=True, slots=True)
class Timing:
    before_s: float = 5.0
    duration_s: float = 10.0
    after_s: float = 5.0
    interval_s: float = 0.5
    wait_s: float = 30.0  # longest wait for the probe traces, after the last phase
    # The services' SDK retry deadline (``retry_deadline_s``, 30 s by default): a batch
    # in flight when the fault ends is exported or dropped within it, so only a report
    # sent this long after the fault's end holds every drop the fault caused.
    grace_s: float = 30.0
    settle_s: float = 150.0  # longest wait for those SDK reports


@dataclass(frozen=True, slots=True)
class _Phase:
    name: str
    journeys: tuple[tuple[StepOutcome, ...], ...]


def drive(plan: Plan, name: str, seconds: float, interval_s: float) -> _Phase:
    """Send the plan's steps as journeys, one after another, for ``seconds``."""
    journeys: list[tuple[StepOutcome, ...]] = []
    until = time.monotonic() + seconds
    for _ in range(MAX_JOURNEYS_PER_PHASE):
        started = time.monotonic()
        if started >= until and journeys:
            break
        journey = new_journey_id()
        journeys.append(tuple(send_step(step, journey) for step in plan.steps))
        time.sleep(max(0.0, min(interval_s - (time.monotonic() - started), until - started)))
    return _Phase(name, tuple(journeys))


def run_drill(
    plan: Plan,
    fault: Fault,
    scenario: str,
    *,
    fetch: FetchTrace,
    sdk_report: SdkReport,
    timing: Timing,
) -> DrillReport:
    """Run the phases around ``fault`` and report (see the module docstring)."""
    before = drive(plan, "before", timing.before_s, timing.interval_s)
    first = _traces((before,), fetch, timing.wait_s)
    services = sorted(
        set(plan.services) | {span.service for spans in first.values() for span in spans}
    )
    baseline = {service: sdk_report(service) for service in services}
    fault.begin()
    try:
        during = drive(plan, "during", timing.duration_s, timing.interval_s)
    finally:
        fault.end()
    settled_ns = time.time_ns() + int(timing.grace_s * 1e9)
    after = drive(plan, "after", timing.after_s, timing.interval_s)
    # No more probe traffic, and the batches the fault held are settled, from here.
    quiet_ns = max(time.time_ns(), settled_ns)
    later = {**first, **_traces((during, after), fetch, timing.wait_s)}
    services = sorted(set(services) | {span.service for spans in later.values() for span in spans})
    final = _settled_reports(services, sdk_report, quiet_ns, timing.settle_s)
    phases = (before, during, after)
    return DrillReport(
        scenario=scenario,
        fault=fault.describe(),
        services=tuple(service_cost(s, baseline.get(s), final.get(s)) for s in services),
        latency=tuple(_latency(phase) for phase in phases),
        propagation=tuple(
            phase_propagation(phase.name, _verdicts(plan, phase, later)) for phase in phases
        ),
    )


def _traces(phases: Sequence[_Phase], fetch: FetchTrace, wait_s: float) -> Traces:
    ids = [o.trace_id for phase in phases for journey in phase.journeys for o in journey]
    return dict(wait_for_traces(ids, fetch, wait_s=wait_s))


def _verdicts(plan: Plan, phase: _Phase, traces: Traces) -> list[Verdict]:
    return [judge(plan, journey, traces) for journey in phase.journeys]


def _latency(phase: _Phase) -> PhaseLatency:
    outcomes = [outcome for journey in phase.journeys for outcome in journey]
    answered = [o.elapsed_ns for o in outcomes if o.status is not None]
    return phase_latency(phase.name, answered, len(outcomes) - len(answered))


def _settled_reports(
    services: Sequence[str], sdk_report: SdkReport, quiet_ns: int, settle_s: float
) -> dict[str, Mapping[str, object] | None]:
    """Each service's reports once every one has a report sent after the probe traffic
    stopped (``quiet_ns``), with nothing left queued, and two reads ``SETTLE_POLL_S``
    apart agree; whatever there is when ``settle_s`` runs out."""
    deadline = time.monotonic() + settle_s
    previous: dict[str, list[tuple[object, ...]]] | None = None
    while True:
        current = {service: sdk_report(service) for service in services}
        counters = {service: _counters(answer) for service, answer in current.items()}
        fresh = all(_settled_since(current[s], quiet_ns) for s in services)
        if (fresh and counters == previous) or time.monotonic() >= deadline:
            return current
        previous = counters
        time.sleep(SETTLE_POLL_S)


def _processes(answer: Mapping[str, object] | None) -> list[Mapping[str, object]]:
    found = answer.get("processes") if answer else None
    if not isinstance(found, list):
        return []
    return [p for p in found if isinstance(p, Mapping)]


def _counters(answer: Mapping[str, object] | None) -> list[tuple[object, ...]]:
    keys = ("instance", "exported_spans", "dropped_spans", "retried_spans", "queued_spans")
    return sorted(tuple(str(p.get(k)) for k in keys) for p in _processes(answer))


def _settled_since(answer: Mapping[str, object] | None, since_ns: int) -> bool:
    processes = _processes(answer)
    if not processes:
        return False
    newest = max(processes, key=lambda p: _int(p.get("reported_ns")))
    return _int(newest.get("reported_ns")) > since_ns and not _int(newest.get("queued_spans"))


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
