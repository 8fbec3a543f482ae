"""Tail-latency and error rankings on hand-built group counts with known answers."""

from __future__ import annotations

import pytest

from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.analysis.critical_path import (
    CriticalPath,
    PathSegment,
    SegmentKind,
)
from threadline.server.analysis.tail_latency import (
    explain,
    path_totals,
    rank_attributes,
    rank_error_sources,
    rank_time_growth,
    request_path,
)
from threadline.server.analysis.tree import build_tree
from threadline.server.model import SpanKind, SpanRecord

MS = 1_000_000


def op(
    service: str,
    operation: str,
    focus_self_ms: float = 0,
    baseline_self_ms: float = 0,
    *,
    traces: tuple[int, int] = (10, 90),
    errors: tuple[int, int] = (0, 0),
) -> OperationPresence:
    return OperationPresence(
        service=service,
        operation=operation,
        focus_traces=traces[0],
        baseline_traces=traces[1],
        focus_self_ns=int(focus_self_ms * MS),
        baseline_self_ns=int(baseline_self_ms * MS),
        focus_error_traces=errors[0],
        baseline_error_traces=errors[1],
    )


def groups(
    operations: tuple[OperationPresence, ...] = (),
    attributes: tuple[AttributeCount, ...] = (),
    *,
    focus: int = 10,
    baseline: int = 90,
) -> TraceGroups:
    return TraceGroups(
        target=Target("gateway", "POST /checkout"),
        split=Split.SLOW,
        window=TimeWindow(0, 3600 * 10**9),
        threshold_ns=400 * MS,
        focus_traces=focus,
        baseline_traces=baseline,
        focus_sample=focus,
        baseline_sample=baseline,
        operations=operations,
        attributes=attributes,
        examples=(),
    )


def test_time_growth_is_the_difference_of_mean_time_per_trace() -> None:
    """Means divide by the group's trace count; the biggest growth ranks first."""
    found = rank_time_growth(
        groups(
            (
                # 10 slow traces spend 3000 ms here, 90 others 900 ms: 300 vs 10 ms a trace.
                op("payments", "provider call", 3000, 900),
                # Grows too, but less: 20 vs 10 ms.
                op("db", "SELECT", 200, 900),
                # Same mean in both groups: not listed.
                op("auth", "verify", 50, 450),
                # Shrinks: not listed.
                op("cache", "get", 10, 900),
            )
        )
    )
    assert [(r.service, r.operation) for r in found] == [
        ("payments", "provider call"),
        ("db", "SELECT"),
    ]
    assert found[0].focus_self_ns == pytest.approx(300 * MS)
    assert found[0].baseline_self_ns == pytest.approx(10 * MS)
    assert found[0].growth_ns == pytest.approx(290 * MS)
    assert found[0].measure == "self_time"


def test_critical_path_totals_rank_instead_of_self_time() -> None:
    """Given path totals, growth is measured on the critical path (a parallel branch drops out)."""
    parallel = op("search", "query", 3000, 900)  # grows in self time, but off the path
    on_path = op("payments", "charge", 200, 1800)
    totals = path_totals(
        [_path("t1", ("payments", "charge", 250)), _path("t2", ("payments", "charge", 350))],
        [_path("t3", ("payments", "charge", 100)), _path("t4", ("search", "query", 10))],
    )
    assert totals.focus_traces == 2
    assert totals.focus_ns == {("payments", "charge"): 600 * MS}
    found = rank_time_growth(groups((parallel, on_path)), totals)
    assert [(r.service, r.operation) for r in found] == [("payments", "charge")]
    assert found[0].focus_path_ns == pytest.approx(300 * MS)
    assert found[0].baseline_path_ns == pytest.approx(50 * MS)
    assert found[0].measure == "critical_path"


def _path(trace_id: str, *owners: tuple[str, str, int]) -> CriticalPath:
    segments = []
    at = 0
    for service, operation, duration_ms in owners:
        segments.append(
            PathSegment(SegmentKind.SPAN, "s", service, operation, at, at + duration_ms * MS)
        )
        at += duration_ms * MS
    # A queue wait belongs to no operation and is left out of the totals.
    segments.append(PathSegment(SegmentKind.QUEUE, "q", "orders", "p → c", at, at + 5 * MS))
    return CriticalPath(trace_id, "s", 0, at + 5 * MS, tuple(segments), (), ())


def test_attribute_score_prefers_a_common_cause_over_a_rare_one() -> None:
    """90% vs 25% outranks 30% vs 0%: the difference of shares ranks, lift is shown."""
    found = rank_attributes(
        groups(
            attributes=(
                AttributeCount("order.id", "o-17", focus_traces=3, baseline_traces=0),
                AttributeCount("payment.provider", "slowpay", 9, 22),
                AttributeCount("deployment.environment", "production", 10, 90),
                AttributeCount("payment.provider", "fastpay", 1, 68),
            )
        )
    )
    assert [(r.key, r.value) for r in found] == [
        ("payment.provider", "slowpay"),
        ("order.id", "o-17"),
    ]
    top = found[0]
    assert top.focus_share == pytest.approx(0.9)
    assert top.baseline_share == pytest.approx(22 / 90)
    assert top.score == pytest.approx(0.9 - 22 / 90)
    assert top.lift == pytest.approx((10 / 12) / (23 / 92))


def test_attribute_values_below_the_support_are_left_out() -> None:
    """A value on fewer focus traces than the minimum support is not ranked."""
    rare = AttributeCount("user.id", "u-1", focus_traces=2, baseline_traces=0)
    assert rank_attributes(groups(attributes=(rare,)), min_support=3) == ()
    assert len(rank_attributes(groups(attributes=(rare,)), min_support=2)) == 1


def test_error_sources_rank_by_share_of_failed_traces() -> None:
    """Where errors start more often in failed traces ranks first; equal shares drop out."""
    found = rank_error_sources(
        groups(
            (
                op("inventory", "reserve", errors=(8, 0)),
                op("payments", "charge", errors=(2, 0)),
                op("cache", "get", errors=(1, 9)),  # as common in successful traces
                op("auth", "verify"),
            )
        )
    )
    assert [(r.service, r.operation, r.score) for r in found] == [
        ("inventory", "reserve", pytest.approx(0.8)),
        ("payments", "charge", pytest.approx(0.2)),
    ]


def test_empty_groups_rank_nothing_and_divide_by_nothing() -> None:
    """With no traces at all, every ranking is empty rather than an error."""
    empty = groups(focus=0, baseline=0)
    result = explain(empty)
    assert (result.time_growth, result.error_sources, result.attributes) == ((), (), ())


def test_explain_cuts_each_list_to_the_limit() -> None:
    """explain returns at most ``limit`` rows of each ranking."""
    many = tuple(op("svc", f"op-{i}", 100 + i, 0) for i in range(30))
    assert len(explain(groups(many), limit=5).time_growth) == 5


def _span(
    span_id: str, parent: str | None, service: str, name: str, kind: SpanKind, start: int, end: int
) -> SpanRecord:
    return SpanRecord("ab" * 16, span_id, parent, service, name, kind, start * MS, end * MS)


# gateway 0..100 calls payments (12..58, its provider 15..55), then publishes a
# message consumed 70..200, after the gateway answered.
CHECKOUT_TRACE = [
    _span("g", None, "gateway", "POST /checkout", SpanKind.SERVER, 0, 100),
    _span("c", "g", "gateway", "POST /pay", SpanKind.CLIENT, 10, 60),
    _span("p", "c", "payments", "charge", SpanKind.SERVER, 12, 58),
    _span("x", "p", "payments", "provider call", SpanKind.CLIENT, 15, 55),
    _span("m", "g", "gateway", "publish", SpanKind.PRODUCER, 60, 61),
    _span("n", "m", "mailer", "send", SpanKind.CONSUMER, 70, 200),
]


def test_request_path_covers_the_target_request_until_it_answers() -> None:
    """The path of a downstream request spans only it; a root's path ends at its response."""
    tree = build_tree(CHECKOUT_TRACE)
    payments = request_path(tree, Target("payments", "charge"))
    assert payments is not None
    assert (payments.start_ns, payments.end_ns) == (12 * MS, 58 * MS)
    assert payments.spans[0].operation == "provider call"
    assert payments.spans[0].duration_ns == 40 * MS
    whole = request_path(tree, Target())
    assert whole is not None
    assert (whole.start_ns, whole.end_ns) == (0, 100 * MS)  # the mailer ran after the answer
    assert "mailer" not in {share.name for share in whole.shares}
    assert request_path(tree, Target("payments", "refund")) is None
