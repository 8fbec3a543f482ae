"""The drill report's arithmetic on hand-built SDK answers and verdicts with known results."""

from __future__ import annotations

from threadline.drills.report import (
    DrillReport,
    PhaseLatency,
    latency_changed,
    phase_latency,
    phase_propagation,
    service_cost,
)
from threadline.probing.verdict import Problem, Verdict


def answer(*processes: dict[str, object]) -> dict[str, object]:
    return {"service": "orders", "processes": list(processes)}


def process(instance: str, dropped: int, retried: int, **reasons: int) -> dict[str, object]:
    return {
        "instance": instance,
        "exported_spans": 100 + dropped,
        "dropped_spans": dropped,
        "retried_spans": retried,
        "failed_requests": retried // 2,
        "dropped_by_reason": reasons,
    }


def test_cost_is_the_difference_per_process_and_a_new_process_starts_at_zero() -> None:
    """Process a had dropped 5 before the drill and 12 after: 7; b appeared during the
    drill with 3 dropped: 3. Retries likewise; reasons are differences too."""
    before = answer(process("a", 5, 10, queue_full=5))
    after = answer(
        process("a", 12, 30, queue_full=5, retry_deadline=7),
        process("b", 3, 4, retry_deadline=3),
    )
    cost = service_cost("orders", before, after)
    assert (cost.dropped, cost.retried, cost.processes, cost.reported) == (10, 24, 2, True)
    assert cost.dropped_by_reason == (("retry_deadline", 10),)


def test_no_report_after_recovery_is_said_not_guessed() -> None:
    cost = service_cost("orders", answer(process("a", 0, 0)), None)
    assert (cost.reported, cost.dropped) == (False, 0)


def test_latency_changes_only_beyond_ratio_and_floor() -> None:
    """5 → 9 ms is +80% but 4 ms: noise. 40 → 100 ms is a change; so is a lost answer."""
    before = phase_latency("before", [5_000_000, 5_000_000], 0)
    assert not latency_changed(before, phase_latency("during", [9_000_000], 0))
    slow = PhaseLatency("during", 1, 0, 100.0, 100.0)
    assert latency_changed(PhaseLatency("before", 1, 0, 40.0, 40.0), slow)
    assert latency_changed(before, phase_latency("during", [5_000_000], 1))


def verdict(*checks: str) -> Verdict:
    problems = tuple(Problem(check, "m", trace_id="t") for check in checks)  # type: ignore[arg-type]
    return Verdict("p", problems, ("t",), ("front",))


def report(during: list[Verdict], dropped: int) -> DrillReport:
    cost = service_cost("front", answer(process("a", 0, 0)), answer(process("a", dropped, 0)))
    return DrillReport(
        "backend-down",
        "down",
        (cost,),
        (),
        (
            phase_propagation("before", [verdict()]),
            phase_propagation("during", during),
            phase_propagation("after", [verdict()]),
        ),
    )


def test_journeys_lost_during_the_fault_count_only_when_the_sdks_dropped_spans() -> None:
    """Incomplete journeys during an outage with drops: intact (data loss, counted). The
    same failures with nothing dropped: propagation broke."""
    failing = [verdict("missing-trace"), verdict()]
    assert report(failing, dropped=4).propagation_intact
    assert not report(failing, dropped=0).propagation_intact
    assert report([verdict()], dropped=0).propagation_intact
    during = phase_propagation("during", failing)
    assert (during.journeys, during.passed, during.problems) == (2, 1, (("missing-trace", 1),))
