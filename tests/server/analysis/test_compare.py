"""Trace comparison: operations on one side only, and where the time moved, largest first."""

from __future__ import annotations

from threadline.server.analysis.compare import (
    Operation,
    OperationTotals,
    compare_traces,
    operation_totals,
)
from threadline.server.analysis.tree import build_tree
from threadline.server.model import SpanKind, SpanRecord


def span(
    trace: str, span_id: str, parent: str | None, start: int, end: int, service: str, name: str
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace * 32,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name,
        kind=SpanKind.INTERNAL,
        start_ns=start,
        end_ns=end,
    )


FAST = build_tree(
    [
        span("a", "gw", None, 0, 100, "gateway", "GET /checkout"),
        span("a", "cache", "gw", 5, 10, "gateway", "cache get"),
        span("a", "ord", "gw", 10, 90, "orders", "POST /orders"),
        span("a", "q1", "ord", 20, 30, "postgres", "SELECT"),
        span("a", "q2", "ord", 40, 50, "postgres", "SELECT"),
    ]
)
SLOW = build_tree(
    [
        span("b", "gw", None, 0, 400, "gateway", "GET /checkout"),
        span("b", "ord", "gw", 10, 390, "orders", "POST /orders"),
        span("b", "q1", "ord", 20, 30, "postgres", "SELECT"),
        span("b", "q2", "ord", 40, 60, "postgres", "SELECT"),
        span("b", "q3", "ord", 70, 100, "postgres", "SELECT"),
        span("b", "pay", "ord", 100, 350, "payments", "charge"),
    ]
)


def test_operations_present_on_one_side_only_are_named() -> None:
    """The comparison names what only the baseline did and what only the candidate did."""
    comparison = compare_traces(FAST, SLOW)
    assert comparison.only_in_baseline == (Operation("gateway", "cache get"),)
    assert comparison.only_in_candidate == (Operation("payments", "charge"),)


def test_per_operation_differences_are_exact_and_sorted_by_absolute_difference() -> None:
    """Each operation's count and summed time per side, biggest change first."""
    comparison = compare_traces(FAST, SLOW)
    assert [
        (d.operation.service, d.operation.name, d.duration_diff_ns, d.count_diff)
        for d in comparison.operations
    ] == [
        ("gateway", "GET /checkout", 300, 0),
        ("orders", "POST /orders", 300, 0),
        ("payments", "charge", 250, 1),
        ("postgres", "SELECT", 40, 1),
        ("gateway", "cache get", -5, -1),
    ]
    select = comparison.operations[3]
    assert select.baseline == OperationTotals(count=2, duration_ns=20, self_time_ns=20)
    assert select.candidate == OperationTotals(count=3, duration_ns=60, self_time_ns=60)
    orders = comparison.operations[1]
    # Self time shows orders' own code barely changed: the new time is in its callees.
    assert (orders.baseline.self_time_ns, orders.candidate.self_time_ns) == (60, 70)
    assert orders.self_time_diff_ns == 10
    assert (comparison.baseline_duration_ns, comparison.candidate_duration_ns) == (100, 400)
    assert comparison.duration_diff_ns == 300
    assert (comparison.baseline_trace_id, comparison.candidate_trace_id) == ("a" * 32, "b" * 32)


def test_a_trace_compared_with_itself_has_no_differences() -> None:
    """Comparing a trace with itself lists every operation with a zero difference."""
    comparison = compare_traces(SLOW, SLOW)
    assert comparison.only_in_baseline == comparison.only_in_candidate == ()
    assert {d.duration_diff_ns for d in comparison.operations} == {0}
    assert len(comparison.operations) == 4


def test_self_times_of_all_operations_add_up_to_the_trace() -> None:
    """Per-operation self times sum to the trace's own total self time."""
    totals = operation_totals(SLOW)
    assert sum(t.self_time_ns for t in totals.values()) == sum(
        SLOW.self_time_by_service_ns.values()
    )
    assert sum(t.count for t in totals.values()) == len(SLOW.nodes)
