"""Margins of sampled figures: they cover the whole group's figure as often as they say,
vanish when the sample is the group, and mark the rankings' rows a sample cannot order."""

from __future__ import annotations

import math
import random

import pytest

from support.times import MS
from support.trace_groups import slow_split
from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    TraceGroups,
)
from threadline.server.analysis import sampling_error
from threadline.server.analysis.critical_path import CriticalPath, PathSegment, SegmentKind
from threadline.server.analysis.request_paths import path_totals
from threadline.server.analysis.tail_latency import (
    rank_attributes,
    rank_error_sources,
    rank_time_growth,
)

# Samples drawn in the coverage tests: enough that a 95% interval's hit rate is known to
# about ±1.5 points, few enough to run in a fraction of a second.
DRAWS = 800


def _covered(hits: int) -> float:
    return hits / DRAWS


def test_a_mean_margin_covers_the_group_mean_as_often_as_it_says() -> None:
    """Means of 200 of 5,000 traces' times (most traces lack the operation: zero): the
    95% margin holds the whole group's mean in about 95% of samples."""
    rng = random.Random(7)
    group = [rng.lognormvariate(3, 1) * MS if rng.random() < 0.3 else 0.0 for _ in range(5000)]
    true_mean = sum(group) / len(group)
    hits = 0
    for _ in range(DRAWS):
        sample = rng.sample(group, 200)
        total, squares = sum(sample), sum(value * value for value in sample)
        margin = sampling_error.mean_margin(total, squares, len(sample), len(group))
        hits += abs(total / len(sample) - true_mean) <= margin
    assert 0.92 <= _covered(hits) <= 0.98


def test_a_share_margin_covers_the_group_share_as_often_as_it_says() -> None:
    rng = random.Random(11)
    group = [rng.random() < 0.12 for _ in range(8000)]
    true_share = sum(group) / len(group)
    hits = 0
    for _ in range(DRAWS):
        sample = rng.sample(group, 500)
        margin = sampling_error.share_margin(sum(sample), len(sample), len(group))
        hits += abs(sum(sample) / len(sample) - true_share) <= margin
    assert 0.92 <= _covered(hits) <= 0.98


def test_a_sample_that_is_the_whole_group_has_no_margin() -> None:
    assert sampling_error.mean_margin(100.0, 2_000.0, 10, 10) == 0.0
    assert sampling_error.share_margin(3, 10, 10) == 0.0
    assert sampling_error.log_share_margin(3, 10, 10) == 0.0
    # Most of the group sampled: the correction shrinks the margin below the plain one.
    plain = sampling_error.share_margin(50, 100, 10**9)
    assert 0 < sampling_error.share_margin(50, 100, 110) < plain / 3


def test_one_sampled_trace_of_many_says_nothing_of_the_spread() -> None:
    assert sampling_error.mean_margin(5.0, 25.0, 1, 100) == math.inf


def test_figures_are_apart_only_beyond_their_combined_margin() -> None:
    assert sampling_error.combined(3.0, 4.0) == pytest.approx(5.0)
    assert sampling_error.apart(10.0, 3.0, 4.0, 4.0)  # 6 apart, margin 5
    assert not sampling_error.apart(10.0, 3.0, 6.0, 4.0)  # 4 apart


def _sampled(
    operations: tuple[OperationPresence, ...] = (),
    attributes: tuple[AttributeCount, ...] = (),
) -> TraceGroups:
    """10,000 slow and 100,000 other traces, 2,000 of each counted."""
    return slow_split(operations, attributes, focus=10_000, baseline=100_000, sampled=2000)


def _timed(
    name: str, focus_ms: float, spread_ms: float, *, sampled: int = 2000
) -> OperationPresence:
    """An operation every sampled trace runs: ``focus_ms`` a slow trace, 1 ms a usual
    one, each group's times spread by ``spread_ms`` (their standard deviation)."""

    def squares(mean_ms: float) -> float:
        return sampled * ((mean_ms * MS) ** 2 + (spread_ms * MS) ** 2)

    return OperationPresence(
        service="shop",
        operation=name,
        focus_traces=sampled,
        baseline_traces=sampled,
        focus_self_ns=int(sampled * focus_ms * MS),
        baseline_self_ns=int(sampled * MS),
        focus_error_traces=0,
        baseline_error_traces=0,
        focus_self_squares=squares(focus_ms),
        baseline_self_squares=squares(1.0),
    )


def test_time_growth_marks_the_rows_its_sample_cannot_order() -> None:
    """Growth of 299 ms ranks apart; 11 and 10.5 ms, each ±~1.2 ms, are a tie the sample
    cannot order (a full count may swap them); 5 ms is apart from them again."""
    found = rank_time_growth(
        _sampled(
            (
                _timed("charge", 300, 40),
                _timed("query a", 12, 20),
                _timed("query b", 11.5, 20),
                _timed("render", 6, 5),
            )
        )
    )
    assert [(row.operation, row.tied) for row in found] == [
        ("charge", False),
        ("query a", False),
        ("query b", True),
        ("render", False),
    ]
    # 20 ms spread over 2,000 traces of each group, 2,000 of 10,000 and of 100,000
    # (the part left out: 0.8 and 0.98): 1.96 × 20 ms × √((0.8 + 0.98) / 2000) ≈ 1.17 ms.
    expected = 1.96 * 20 * MS * math.sqrt((0.8 + 0.98) / 2000)
    assert found[1].margin_ns == pytest.approx(expected, rel=0.01)


def test_a_group_counted_whole_orders_every_row() -> None:
    """The same near tie over groups read whole (no sample): no margin, no tie."""
    found = rank_time_growth(
        slow_split(
            (_timed("query a", 12, 20, sampled=500), _timed("query b", 11.5, 20, sampled=500)),
            focus=500,
            baseline=500,
        )
    )
    assert [(row.operation, row.margin_ns, row.tied) for row in found] == [
        ("query a", 0.0, False),
        ("query b", 0.0, False),
    ]


def _failing(name: str, focus: int, baseline: int = 0) -> OperationPresence:
    return OperationPresence(
        service="payments",
        operation=name,
        focus_traces=2000,
        baseline_traces=2000,
        focus_self_ns=0,
        baseline_self_ns=0,
        focus_error_traces=focus,
        baseline_error_traces=baseline,
        focus_self_squares=0.0,
        baseline_self_squares=0.0,
    )


def test_error_sources_tie_shares_a_few_traces_apart() -> None:
    """Origins in 85%, 5.4% and 5.0% of 2,000 failed traces: the last two are ~8 traces
    apart, well within a sample's error (±0.9 points)."""
    found = rank_error_sources(
        _sampled((_failing("reserve", 1700), _failing("okpay", 108), _failing("slowpay", 100)))
    )
    assert [(row.operation, row.tied) for row in found] == [
        ("reserve", False),
        ("okpay", False),
        ("slowpay", True),
    ]
    # 2,000 of 10,000 failed traces (0.8 left out); no baseline origin: no baseline error.
    expected = 1.96 * math.sqrt(0.05 * 0.95 / 2000 * 0.8)
    assert found[2].margin == pytest.approx(expected, rel=0.03)


def test_a_share_of_none_or_all_of_a_sample_still_has_a_margin() -> None:
    """No sampled trace (or every one) has it: the group's share is not known to be 0
    (or 1) for that."""
    assert 0 < sampling_error.share_margin(0, 2000, 100_000) < 0.003
    assert sampling_error.share_margin(2000, 2000, 100_000) == pytest.approx(
        sampling_error.share_margin(0, 2000, 100_000)
    )


def _value(value: str, focus: int, baseline: int) -> AttributeCount:
    return AttributeCount("payment.provider", value, focus, baseline, 3, 3000)


def test_attribute_lifts_tie_when_their_intervals_overlap() -> None:
    """Lifts ×8 and ×7.6 from a few hundred traces each are one tie; their interval
    brackets the lift."""
    found = rank_attributes(
        _sampled(attributes=(_value("slowpay", 400, 50), _value("oldpay", 380, 50)))
    )
    assert [(row.value, row.tied) for row in found] == [("slowpay", False), ("oldpay", True)]
    assert found[0].lift_low < found[0].lift < found[0].lift_high


def _path(*own: tuple[str, int]) -> CriticalPath:
    segments, at = [], 0
    for operation, ms in own:
        segments.append(PathSegment(SegmentKind.SPAN, "s", "payments", operation, at, at + ms * MS))
        at += ms * MS
    return CriticalPath("t", "s", 0, at, tuple(segments))


def test_path_time_is_squared_per_trace() -> None:
    """An operation twice on one path (80 + 800 ms) counts as one 880 ms trace."""
    totals = path_totals([_path(("charge", 80), ("charge", 800))], [_path(("charge", 80))])
    assert totals.focus_squares == {("payments", "charge"): pytest.approx((880 * MS) ** 2)}
    assert totals.baseline_squares == {("payments", "charge"): pytest.approx((80 * MS) ** 2)}


def test_a_sampled_ranking_contradicts_an_exact_one_only_beyond_its_margins() -> None:
    """Parting at a tie the sample can see is no contradiction; holding two rows the
    other way round where its margins tell them apart is. Rows it does not rank are
    left out, not contradicted."""
    sampled = [("a", 10.0, 1.0), ("b", 5.0, 1.0), ("c", 4.5, 1.0)]
    contradiction = sampling_error.first_contradiction
    assert contradiction(sampled, ["a", "b", "c"]) is None
    assert contradiction(sampled, ["a", "c", "b"]) is None  # a tie
    assert contradiction(sampled, ["b", "a", "c"]) == ("b", "a")  # 5 apart
    assert contradiction(sampled, ["c", "d", "a"]) == ("c", "a")
    assert sampling_error.left_out(sampled, ["a", "d", "b", "e"]) == ["d", "e"]
