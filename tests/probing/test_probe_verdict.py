"""The probe verdict on hand-built traces with known faults: each check names what broke
and between which two services."""

from __future__ import annotations

from typing import Final

from threadline.probing.plan import Plan, Step
from threadline.probing.verdict import ProbeSpan, StepOutcome, judge, render

MS: Final = 1_000_000
PROBE_SPAN: Final = "f" * 16
TRACE: Final = "a" * 32


def span(
    span_id: str,
    parent: str | None,
    service: str,
    kind: str,
    start_ms: int,
    end_ms: int,
    **attributes: object,
) -> ProbeSpan:
    return ProbeSpan(
        span_id,
        parent,
        service,
        f"{service} {kind}",
        kind,
        start_ms * MS,
        end_ms * MS,
        {key.replace("_", "."): value for key, value in attributes.items()},
    )


def checkout_trace() -> list[ProbeSpan]:
    """gateway → (HTTP) orders → (queue) fulfillment, all joined, well nested."""
    return [
        span("g1", PROBE_SPAN, "gateway", "server", 0, 100),
        span("g2", "g1", "gateway", "client", 5, 90, server_address="orders"),
        span("o1", "g2", "orders", "server", 10, 85),
        span("o2", "o1", "orders", "producer", 20, 25, messaging_destination_name="shipments"),
        span("f1", "o2", "fulfillment", "consumer", 30, 140),
    ]


def step(budget_ms: int | None = None) -> Step:
    return Step(
        "checkout",
        "POST",
        "http://127.0.0.1:8000/checkout",
        budget_ns=None if budget_ms is None else budget_ms * MS,
    )


def outcome(status: int = 200, budget_ms: int | None = None, trace: str = TRACE) -> StepOutcome:
    return StepOutcome(step(budget_ms), trace, PROBE_SPAN, status, 100 * MS)


PLAN: Final = Plan("checkout", (step(),), ("gateway", "orders", "fulfillment"))


def test_a_whole_journey_passes() -> None:
    """Every hop joined, every child inside its parent (a consumer may outlive its
    producer), every service present: no problem, and the verdict says PASS."""
    verdict = judge(PLAN, [outcome()], {TRACE: checkout_trace()})
    assert verdict.problems == ()
    assert render(verdict, lambda t: t) == [
        "PASS checkout: 1 step(s) through fulfillment, gateway, orders"
    ]


def test_a_callee_without_instrumentation_is_a_broken_hop_between_the_two() -> None:
    """orders sent no span: gateway's client span has nothing below it, and orders and
    fulfillment are missing."""
    spans = checkout_trace()[:2]
    verdict = judge(PLAN, [outcome()], {TRACE: spans})
    checks = [(p.check, p.between) for p in verdict.problems]
    assert checks == [
        ("broken-hop", ("gateway", "orders")),
        ("missing-service", None),
        ("missing-service", None),
    ]
    lines = render(verdict, lambda t: f"http://ui/trace/{t}")
    assert lines[0] == "FAIL checkout: 3 problem(s)"
    assert f"    trace: http://ui/trace/{TRACE}" in lines


def test_a_queue_hop_that_drops_headers_is_a_broken_message_hop() -> None:
    """The consumer started a trace of its own: the producer span has no consumer."""
    spans = checkout_trace()[:4]
    verdict = judge(PLAN, [outcome()], {TRACE: spans})
    assert [(p.check, p.between) for p in verdict.problems] == [
        ("broken-message-hop", ("orders", "shipments")),
        ("missing-service", None),
    ]


def test_orphans_and_spans_outside_their_parent() -> None:
    """A span whose parent never arrived is an orphan; a synchronous child ending after
    its parent is reported with the parent's service first."""
    spans = checkout_trace()
    spans[2] = span("o1", "g2", "orders", "server", 0, 80)  # starts before g2 (5)
    spans.append(span("x1", "lost", "payments", "server", 40, 50))
    verdict = judge(PLAN, [outcome()], {TRACE: spans})
    assert [(p.check, p.between) for p in verdict.problems] == [
        ("orphan", None),
        ("outside-parent", ("gateway", "orders")),
    ]
    assert "payments span 'payments server' has a parent that never arrived" in (
        verdict.problems[0].message
    )


def test_a_callee_span_may_close_a_little_after_its_caller() -> None:
    """A server span ends after its response went out: 50 ms past the caller's client
    span is no fault, 200 ms is."""
    spans = checkout_trace()
    spans[2] = span("o1", "g2", "orders", "server", 10, 140)
    assert judge(PLAN, [outcome()], {TRACE: spans}).problems == ()
    spans[2] = span("o1", "g2", "orders", "server", 10, 290)
    (problem,) = judge(PLAN, [outcome()], {TRACE: spans}).problems
    assert "ends 200.0 ms after its parent gateway" in problem.message


def test_a_step_over_budget_names_the_slowest_service_below() -> None:
    """The entry span took 100 ms against 50 ms: over budget, fulfillment the slowest."""
    verdict = judge(PLAN, [outcome(budget_ms=50)], {TRACE: checkout_trace()})
    (problem,) = verdict.problems
    assert problem.check == "budget"
    assert problem.between == ("gateway", "fulfillment")
    assert problem.message.startswith("step 'checkout' took 100 ms at gateway, over its 50 ms")


def test_wrong_status_and_missing_trace() -> None:
    """A 500 where 200 was expected, and no span at all: two problems for the step."""
    verdict = judge(PLAN, [outcome(status=500)], {})
    assert [p.check for p in verdict.problems][:2] == ["status", "missing-trace"]
    assert "expected 200, got 500" in verdict.problems[0].message


def test_steps_out_of_order() -> None:
    """The second step's entry span started before the first's."""
    second = "b" * 32
    later = [span("g1", PROBE_SPAN, "gateway", "server", 500, 510)]
    earlier = [span("h1", PROBE_SPAN, "gateway", "server", 0, 10)]
    plan = Plan("two", (step(), step()), ())
    verdict = judge(plan, [outcome(), outcome(trace=second)], {TRACE: later, second: earlier})
    assert [p.check for p in verdict.problems] == ["order"]
