"""Tail-latency and error rankings on hand-built group counts with known answers."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.trace_groups import slow_split
from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    Target,
)
from threadline.server.analysis.attribute_signal import ALPHA, discoveries, fisher_greater
from threadline.server.analysis.critical_path import (
    CriticalPath,
    PathSegment,
    SegmentKind,
)
from threadline.server.analysis.request_paths import path_totals, request_path
from threadline.server.analysis.tail_latency import (
    explain,
    rank_attributes,
    rank_error_sources,
    rank_time_growth,
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
        focus_self_squares=0.0,
        baseline_self_squares=0.0,
    )


def test_time_growth_is_the_difference_of_mean_time_per_trace() -> None:
    """Means divide by the group's trace count; the biggest growth ranks first."""
    found = rank_time_growth(
        slow_split(
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
    found = rank_time_growth(slow_split((parallel, on_path)), totals)
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
    return CriticalPath(trace_id, "s", 0, at + 5 * MS, tuple(segments))


def test_a_strong_cause_outranks_what_merely_separates_operations() -> None:
    """A service's slow set: 15% carry the slow provider (0.2% of the rest), 38% the checkout
    route (12% of the rest). Both are significant; the provider's lift (×~60) ranks it first,
    where the difference of shares (0.15 against 0.26) used to bury it."""
    found = rank_attributes(
        slow_split(
            attributes=(
                AttributeCount("http.route", "/checkout", 58, 169),
                AttributeCount("payment.provider", "legacy-bank", 23, 3),
                AttributeCount("deployment.environment", "production", 150, 1400),
            ),
            focus=150,
            baseline=1400,
        )
    )
    assert [(r.key, r.value) for r in found] == [
        ("payment.provider", "legacy-bank"),
        ("http.route", "/checkout"),
    ]
    top = found[0]
    assert top.focus_share == pytest.approx(23 / 150)
    assert top.baseline_share == pytest.approx(3 / 1400)
    assert top.lift == pytest.approx((24 / 152) / (4 / 1402))
    assert top.p_value < 1e-15


def test_identifiers_and_ephemeral_ports_are_never_ranked() -> None:
    """Per-connection ports, per-request ids and keys with a value per trace are left out,
    even when one of their values happens to be over-represented, and say why."""
    found = explain(
        slow_split(
            attributes=(
                AttributeCount("net.peer.port", "50464", 30, 5),
                AttributeCount("messaging.message.id", "m-1", 30, 0),
                # A value per trace: full URLs with order ids, timestamps.
                AttributeCount("http.url", "/orders/17", 30, 0, key_values=950, key_traces=1000),
                AttributeCount(
                    "order.created_at", "1700000000", 30, 0, key_values=40, key_traces=60
                ),
                # Few values over many traces: a property, ranked.
                AttributeCount("host.name", "api-2", 30, 5, key_values=4, key_traces=1000),
            ),
            focus=100,
            baseline=900,
        )
    )
    assert [(r.key, r.value) for r in found.attributes] == [("host.name", "api-2")]
    assert {(u.key, u.reason) for u in found.unranked} == {
        ("net.peer.port", "per connection"),
        ("messaging.message.id", "per request"),
        ("http.url", "unique per request"),
        ("order.created_at", "unique per request"),
    }


def test_values_need_a_minimum_count_and_share_of_the_slow_set() -> None:
    """Below 5 slow traces, or below 5% of the slow set, a value is an anecdote, however
    unusual: 4 of 10 and 6 of 200 (3%) are left out; 12 of 200 is listed."""
    few = AttributeCount("host.name", "api-9", 4, 0)
    assert rank_attributes(slow_split(attributes=(few,), focus=10, baseline=1000)) == ()
    thin = AttributeCount("host.name", "api-9", 6, 0)
    enough = AttributeCount("host.name", "api-7", 12, 0)
    found = rank_attributes(slow_split(attributes=(thin, enough), focus=200, baseline=1000))
    assert [r.value for r in found] == ["api-7"]


def test_differences_likely_by_chance_are_not_listed() -> None:
    """26% of slow vs 15% of the rest on 23 slow traces (p = 0.13) is chance; so is p = 0.0027
    as the smallest of four values tested (its bar 0.01 / 4), though it would pass alone."""
    chance = AttributeCount("net.peer.ip", "10.0.0.7", 6, 30)
    assert rank_attributes(slow_split(attributes=(chance,), focus=23, baseline=204)) == ()
    borderline = AttributeCount("host.name", "api-3", 9, 30)  # one-sided Fisher p = 0.0027
    alone = rank_attributes(slow_split(attributes=(borderline,), focus=20, baseline=200))
    assert [r.value for r in alone] == ["api-3"]
    crowd = tuple(AttributeCount("region", f"r-{i}", 6, 30) for i in range(3))
    tested = rank_attributes(slow_split(attributes=(borderline, *crowd), focus=20, baseline=200))
    assert tested == ()


def test_a_value_behind_stronger_ones_is_held_to_its_own_rank_s_bar() -> None:
    """p = 0.0027 is over the bar of the smallest of four (0.01 / 4), but as the fourth
    smallest of four, behind three far stronger values, its bar is 0.01 × 4 / 4: listed
    (Benjamini–Hochberg; each value held to 0.01 / 4 would leave it out)."""
    borderline = AttributeCount("host.name", "api-3", 9, 30)  # one-sided Fisher p = 0.0027
    strong = (
        AttributeCount("region", "r-1", 15, 5),
        AttributeCount("app.plan", "trial", 14, 6),
        AttributeCount("user.tier", "free", 13, 4),
    )
    found = rank_attributes(slow_split(attributes=(borderline, *strong), focus=20, baseline=200))
    assert sorted(r.value for r in found) == ["api-3", "free", "r-1", "trial"]


@pytest.mark.parametrize(
    ("p_values", "tested", "expected"),
    [
        # Each below its own rank's bar 0.01 × k / 3, given in any order.
        ([0.009, 0.001, 0.006], None, [True, True, True]),
        # The smallest is over its bar (0.0033), the second under its (0.0067): both pass.
        ([0.0049, 0.9, 0.004], None, [True, False, True]),
        # The same two among four tested: bars 0.0025 and 0.005, the second still under.
        ([0.0049, 0.004], 4, [True, True]),
        # Among five: bars 0.002 and 0.004, both over.
        ([0.0049, 0.004], 5, [False, False]),
        # A bar is not reached by equalling it.
        ([0.01], 1, [False]),
        ([], 3, []),
    ],
)
def test_discoveries_hold_the_k_th_smallest_to_k_times_the_strictest_bar(
    p_values: list[float], tested: int | None, expected: list[bool]
) -> None:
    assert discoveries(p_values, tested) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=30),
    st.integers(min_value=0, max_value=10),
    st.randoms(use_true_random=False),
)
def test_discoveries_list_every_value_bonferroni_would_and_ignore_order(
    p_values: list[float], untested: int, shuffle: random.Random
) -> None:
    """Every value under the strictest bar (ALPHA / tested) is listed, a value is listed
    whenever a larger one is, and the answer follows the values, not their order."""
    tested = len(p_values) + untested
    found = discoveries(p_values, tested)
    for p_value, listed in zip(p_values, found, strict=True):
        if p_value < ALPHA / tested:
            assert listed
        if listed:
            assert all(flag for other, flag in zip(p_values, found, strict=True) if other < p_value)
    order = list(range(len(p_values)))
    shuffle.shuffle(order)
    moved = discoveries([p_values[i] for i in order], tested)
    assert moved == [found[i] for i in order]


def test_discoveries_refuse_fewer_tested_than_p_values_given() -> None:
    with pytest.raises(ValueError, match="tested must count every p-value"):
        discoveries([0.001, 0.002], tested=1)


def test_per_user_values_are_summarised_as_a_concentration() -> None:
    """Slow requests gathered on two users read "concentrated in 2 users", not two rows;
    a user as common among the others is not part of it."""
    found = explain(
        slow_split(
            attributes=(
                AttributeCount("user.id", "u-1", 10, 2),
                AttributeCount("user.id", "u-2", 8, 3),
                AttributeCount("user.id", "u-3", 5, 50),
                AttributeCount("payment.provider", "legacy-bank", 40, 10),
            ),
            focus=50,
            baseline=500,
        )
    )
    assert [(r.key, r.value) for r in found.attributes] == [("payment.provider", "legacy-bank")]
    (people,) = found.concentrations
    assert (people.key, people.noun, people.values) == ("user.id", "users", ("u-1", "u-2"))
    assert (people.focus_traces, people.baseline_traces) == (18, 5)
    assert people.focus_share == pytest.approx(18 / 50)


def test_no_concentration_when_users_are_spread_as_usual() -> None:
    """Twenty users each with their usual share of slow requests make no finding."""
    spread = tuple(AttributeCount("user.id", f"u-{i}", 5, 45) for i in range(20))
    assert explain(slow_split(attributes=spread, focus=100, baseline=900)).concentrations == ()


def test_fisher_exact_test_matches_known_tables() -> None:
    """The lady tasting tea (3 of 4 right, one-sided p = 17/70) and a perfect split of 6
    among 30 (p = 1 / C(30, 6))."""
    assert fisher_greater(3, 4, 1, 4) == pytest.approx(17 / 70)
    assert fisher_greater(6, 6, 0, 24) == pytest.approx(1 / math.comb(30, 6))
    assert fisher_greater(0, 10, 5, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="between 0"):
        fisher_greater(11, 10, 0, 10)


def _exact_upper_tail(focus: int, focus_sample: int, baseline: int, baseline_sample: int) -> float:
    """P(at least ``focus`` carriers in the focus group), in exact rational arithmetic."""
    total, carriers = focus_sample + baseline_sample, focus + baseline
    ways = sum(
        math.comb(carriers, drawn) * math.comb(total - carriers, focus_sample - drawn)
        for drawn in range(focus, min(carriers, focus_sample) + 1)
    )
    return float(Fraction(ways, math.comb(total, focus_sample)))


@settings(max_examples=300, deadline=None)
@given(
    focus_sample=st.integers(1, 2_500),
    baseline_sample=st.integers(0, 2_500),
    focus_share=st.floats(0, 1),
    baseline_share=st.floats(0, 1),
)
def test_fisher_exact_test_matches_exact_arithmetic_at_sample_sizes(
    focus_sample: int, baseline_sample: int, focus_share: float, baseline_share: float
) -> None:
    """Over tables as large as the samples (2,000 traces a group), on both sides of the
    mode and at the extremes, the p-value is the exact tail's to ten significant digits:
    summing only the terms that matter loses nothing the lgamma terms did not."""
    focus = round(focus_share * focus_sample)
    baseline = round(baseline_share * baseline_sample)
    exact = _exact_upper_tail(focus, focus_sample, baseline, baseline_sample)
    assert fisher_greater(focus, focus_sample, baseline, baseline_sample) == pytest.approx(
        exact, rel=1e-10, abs=1e-300
    )


def test_error_sources_rank_by_share_of_failed_traces() -> None:
    """Where errors start more often in failed traces ranks first; equal shares drop out."""
    found = rank_error_sources(
        slow_split(
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
    empty = slow_split(focus=0, baseline=0)
    result = explain(empty)
    assert (result.time_growth, result.error_sources, result.attributes) == ((), (), ())


def test_explain_cuts_each_list_to_the_limit() -> None:
    """explain returns at most ``limit`` rows of each ranking."""
    many = tuple(op("svc", f"op-{i}", 100 + i, 0) for i in range(30))
    assert len(explain(slow_split(many), limit=5).time_growth) == 5


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


def test_values_on_the_same_traces_are_folded_into_one_row() -> None:
    """Route, target and URL of one call, on exactly as many traces, are one row with the
    others listed as alike; a value with other counts keeps its own row."""
    found = rank_attributes(
        slow_split(
            attributes=(
                AttributeCount("http.url", "http://catalog/stock", 53, 147),
                AttributeCount("http.route", "/stock", 53, 147),
                AttributeCount("http.target", "/stock", 53, 147),
                AttributeCount("http.route", "/checkout", 58, 169),
            ),
            focus=150,
            baseline=1400,
        )
    )
    assert [(r.key, r.value, r.alike) for r in found] == [
        ("http.route", "/stock", (("http.target", "/stock"), ("http.url", "http://catalog/stock"))),
        ("http.route", "/checkout", ()),
    ]
