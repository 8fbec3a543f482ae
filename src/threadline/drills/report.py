"""What a drill found, from the values it collected: pure functions, no I/O.

- **SDK figures**: each service's SDK reports its export counters (since the process
  started) to the server as ``threadline.sdk.stats`` spans; the server answers the
  last report per process (``GET /api/services/{name}/sdk``). What the drill cost a
  service is the last report after recovery less the last report before the fault,
  process by process (a process that had not reported before started from zero).
- **Propagation**: the probe journeys of each phase, judged like ``threadline probe``
  (``probing.verdict``). A journey sent while the backend was away may arrive
  incomplete because the SDK dropped its spans; that is data loss the SDK counted,
  not broken propagation. Propagation is intact when every journey before and after
  passed and the journeys during the fault passed too or failed only while the SDKs
  were dropping spans.
- **Latency**: what a user waits, the probe steps' answer times per phase.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.probing.verdict import Verdict

PHASES: Final = ("before", "during", "after")
# A phase's median answer time counts as changed when it is this much slower than
# before the fault, and by at least ``LATENCY_FLOOR_MS``: loopback answers of a few
# milliseconds vary by more than half from run to run without anything being wrong.
LATENCY_CHANGE_RATIO: Final = 1.5
LATENCY_FLOOR_MS: Final = 20.0
_COUNTERS: Final = ("exported_spans", "dropped_spans", "retried_spans", "failed_requests")


@dataclass(frozen=True, slots=True)
class ServiceCost:
    """What the drill cost one service's SDK, summed over its processes."""

    service: str
    processes: int
    exported: int
    dropped: int
    retried: int
    failed_requests: int
    dropped_by_reason: tuple[tuple[str, int], ...]
    reported: bool  # False: no report after recovery arrived in time


def service_cost(
    service: str, before: Mapping[str, object] | None, after: Mapping[str, object] | None
) -> ServiceCost:
    """The difference of two ``/api/services/{name}/sdk`` answers, process by process."""
    earlier = _by_instance(before)
    later = _by_instance(after)
    totals = dict.fromkeys(_COUNTERS, 0)
    reasons: dict[str, int] = {}
    for instance, report in later.items():
        start = earlier.get(instance, {})
        for counter in _COUNTERS:
            totals[counter] += _int(report.get(counter)) - _int(start.get(counter))
        start_reasons = _reasons(start)
        for reason, count in _reasons(report).items():
            delta = count - start_reasons.get(reason, 0)
            if delta:
                reasons[reason] = reasons.get(reason, 0) + delta
    return ServiceCost(
        service=service,
        processes=len(later),
        exported=totals["exported_spans"],
        dropped=totals["dropped_spans"],
        retried=totals["retried_spans"],
        failed_requests=totals["failed_requests"],
        dropped_by_reason=tuple(sorted(reasons.items())),
        reported=bool(later),
    )


@dataclass(frozen=True, slots=True)
class PhaseLatency:
    phase: str
    requests: int
    unanswered: int
    p50_ms: float | None
    max_ms: float | None


def phase_latency(phase: str, elapsed_ns: Sequence[int], unanswered: int) -> PhaseLatency:
    values = [n / 1e6 for n in elapsed_ns]
    return PhaseLatency(
        phase=phase,
        requests=len(values) + unanswered,
        unanswered=unanswered,
        p50_ms=statistics.median(values) if values else None,
        max_ms=max(values) if values else None,
    )


def latency_changed(before: PhaseLatency, other: PhaseLatency) -> bool:
    """Users waited noticeably longer (or got no answer) in ``other`` than before."""
    if other.unanswered > before.unanswered:
        return True
    if before.p50_ms is None or other.p50_ms is None:
        return False
    return (
        other.p50_ms > before.p50_ms * LATENCY_CHANGE_RATIO
        and other.p50_ms - before.p50_ms >= LATENCY_FLOOR_MS
    )


@dataclass(frozen=True, slots=True)
class PhasePropagation:
    phase: str
    journeys: int
    passed: int
    problems: tuple[tuple[str, int], ...]  # check -> count, over the phase's journeys
    example: Verdict | None  # the first failed journey, for its trace links


def phase_propagation(phase: str, verdicts: Sequence[Verdict]) -> PhasePropagation:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        for problem in verdict.problems:
            counts[problem.check] = counts.get(problem.check, 0) + 1
    failed = [v for v in verdicts if not v.passed]
    return PhasePropagation(
        phase=phase,
        journeys=len(verdicts),
        passed=len(verdicts) - len(failed),
        problems=tuple(sorted(counts.items())),
        example=failed[0] if failed else None,
    )


@dataclass(frozen=True, slots=True)
class DrillReport:
    scenario: str
    fault: str
    services: tuple[ServiceCost, ...]
    latency: tuple[PhaseLatency, ...]
    propagation: tuple[PhasePropagation, ...]

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.services)

    @property
    def propagation_intact(self) -> bool:
        phases = {p.phase: p for p in self.propagation}
        steady = all(
            phases[name].journeys and phases[name].passed == phases[name].journeys
            for name in ("before", "after")
            if name in phases
        )
        during = phases.get("during")
        lost = during is not None and during.passed < during.journeys
        return steady and (not lost or self.dropped > 0)

    @property
    def latency_changed(self) -> dict[str, bool]:
        phases = {p.phase: p for p in self.latency}
        before = phases.get("before")
        if before is None:
            return {}
        return {
            name: latency_changed(before, phases[name])
            for name in ("during", "after")
            if name in phases
        }


def render(report: DrillReport, trace_url: Callable[[str], str]) -> list[str]:
    """The report as lines for a person; a failed journey of a phase is linked."""
    lines = [f"drill {report.scenario}: {report.fault}", "", "SDK (per service, over the drill):"]
    for cost in report.services:
        if not cost.reported:
            lines.append(f"  {cost.service}: no SDK report arrived after recovery")
            continue
        reasons = ", ".join(f"{r} {n}" for r, n in cost.dropped_by_reason)
        lines.append(
            f"  {cost.service}: dropped {cost.dropped}"
            + (f" ({reasons})" if reasons else "")
            + f", retried {cost.retried}, failed requests {cost.failed_requests},"
            f" exported {cost.exported} ({cost.processes} process(es))"
        )
    lines += ["", "propagation:"]
    for phase in report.propagation:
        problems = ", ".join(f"{check} {n}" for check, n in phase.problems)
        lines.append(
            f"  {phase.phase}: {phase.passed}/{phase.journeys} journeys passed"
            + (f" ({problems})" if problems else "")
        )
        if phase.example is not None:
            failed = next((p for p in phase.example.problems if p.trace_id), None)
            if failed is not None and failed.trace_id is not None:
                lines.append(f"    e.g. {failed.check}: {trace_url(failed.trace_id)}")
    verdict = "intact" if report.propagation_intact else "BROKEN"
    note = ""
    during = next((p for p in report.propagation if p.phase == "during"), None)
    if report.propagation_intact and during is not None and during.passed < during.journeys:
        note = " (journeys during the fault lost spans the SDKs dropped)"
    lines.append(f"  propagation {verdict}{note}")
    lines += ["", "user-visible latency (probe answers):"]
    changed = report.latency_changed
    for timing in report.latency:
        shown = (
            f"p50 {timing.p50_ms:.1f} ms, max {timing.max_ms:.1f} ms"
            if timing.p50_ms is not None and timing.max_ms is not None
            else "no answers"
        )
        flag = " CHANGED" if changed.get(timing.phase) else ""
        lines.append(
            f"  {timing.phase}: {shown}, {timing.requests} request(s),"
            f" {timing.unanswered} unanswered{flag}"
        )
    return lines


def as_json(report: DrillReport) -> dict[str, object]:
    return {
        "scenario": report.scenario,
        "fault": report.fault,
        "skipped": None,
        "propagation_intact": report.propagation_intact,
        "latency_changed": report.latency_changed,
        "services": [
            {
                "service": s.service,
                "reported": s.reported,
                "processes": s.processes,
                "dropped_spans": s.dropped,
                "dropped_by_reason": dict(s.dropped_by_reason),
                "retried_spans": s.retried,
                "failed_requests": s.failed_requests,
                "exported_spans": s.exported,
            }
            for s in report.services
        ],
        "latency": [
            {
                "phase": p.phase,
                "requests": p.requests,
                "unanswered": p.unanswered,
                "p50_ms": p.p50_ms,
                "max_ms": p.max_ms,
            }
            for p in report.latency
        ],
        "propagation": [
            {
                "phase": p.phase,
                "journeys": p.journeys,
                "passed": p.passed,
                "problems": dict(p.problems),
                "example_traces": list(p.example.trace_ids) if p.example else [],
            }
            for p in report.propagation
        ],
    }


def _by_instance(answer: Mapping[str, object] | None) -> dict[str, Mapping[str, object]]:
    if not answer:
        return {}
    processes = answer.get("processes")
    if not isinstance(processes, list):
        return {}
    return {
        str(p.get("instance")): p
        for p in processes
        if isinstance(p, Mapping) and p.get("instance") is not None
    }


def _reasons(report: Mapping[str, object]) -> dict[str, int]:
    found = report.get("dropped_by_reason")
    if not isinstance(found, Mapping):
        return {}
    return {str(k): _int(v) for k, v in found.items()}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
