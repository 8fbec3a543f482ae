"""The latency sketch: bucket bounds, merging, and percentiles within the promised error."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.server.analysis import sketch


def _exact(values: list[int], q: float) -> float:
    """``quantile_cont``: linear interpolation between the two nearest order statistics."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def test_alpha_is_within_the_promise() -> None:
    """The documented promise (2%) covers the sketch's own error bound."""
    assert sketch.ALPHA <= sketch.PROMISED_ERROR
    assert sketch.GAMMA == (1 + sketch.ALPHA) / (1 - sketch.ALPHA)


@given(st.integers(min_value=1, max_value=10**13))
def test_every_duration_is_within_alpha_of_its_bucket_value(duration: int) -> None:
    """A bucket's value is within α of each duration it holds."""
    value = sketch.bucket_value(sketch.bucket_index(duration))
    assert abs(value - duration) <= sketch.PROMISED_ERROR * duration
    assert abs(value - duration) <= (sketch.ALPHA + 1e-9) * duration


def test_zero_and_negative_durations_stand_for_zero() -> None:
    """Skewed or bad durations land in the zero bucket instead of raising."""
    assert sketch.bucket_index(0) == sketch.ZERO_BUCKET
    assert sketch.bucket_index(-5) == sketch.ZERO_BUCKET
    assert sketch.bucket_value(sketch.ZERO_BUCKET) == 0.0
    assert sketch.bucket_index(1) == 0  # 1 ns is bucket 0, distinct from the zero bucket


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_percentiles_are_within_the_promised_error(values: list[int], q: float) -> None:
    """Any percentile of any sample is within α of quantile_cont's answer."""
    buckets = sketch.merge((sketch.bucket_index(v), 1) for v in values)
    estimate = sketch.quantile(buckets, q)
    exact = _exact(values, q)
    assert estimate is not None
    assert abs(estimate - exact) <= (sketch.ALPHA + 1e-9) * exact


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=300),
    st.randoms(use_true_random=False),
)
def test_percentiles_of_pairs_in_any_order_are_each_within_the_promised_error(
    values: list[int], rng: random.Random
) -> None:
    """Rows as a store returns them (any order, buckets that cancelled to 0 among
    them) give all four percentiles within α of quantile_cont's."""
    pairs = [*sketch.merge((sketch.bucket_index(v), 1) for v in values).items(), (7, 0)]
    rng.shuffle(pairs)
    estimate = sketch.percentiles_of_pairs(pairs)
    assert estimate is not None
    for q, value in zip(
        sketch.QUANTILES, (estimate.p50, estimate.p90, estimate.p95, estimate.p99), strict=True
    ):
        exact = _exact(values, q)
        assert abs(value - exact) <= (sketch.ALPHA + 1e-9) * exact


def test_pairs_with_a_negative_count_or_no_count_are_refused_or_empty() -> None:
    """A bucket subtracted below zero is a bug upstream: it raises; no counts, no answer."""
    with pytest.raises(ValueError, match="negative"):
        sketch.percentiles_of_pairs([(10, 3), (11, -1)])
    assert sketch.percentiles_of_pairs([(10, 0)]) is None
    assert sketch.percentiles_of_pairs([]) is None


def test_merging_two_halves_equals_the_whole() -> None:
    """Histograms of two minutes merged answer like one histogram of both."""
    first = [1_000_000 * i for i in range(1, 51)]
    second = [3_000_000 * i for i in range(1, 51)]
    a = sketch.merge((sketch.bucket_index(v), 1) for v in first)
    b = sketch.merge((sketch.bucket_index(v), 1) for v in second)
    whole = sketch.merge((sketch.bucket_index(v), 1) for v in first + second)
    assert sketch.merge(a.items(), b.items()) == whole
    p50 = sketch.percentiles(whole)
    assert p50 is not None
    assert abs(p50.p50 - statistics.median(first + second)) <= sketch.ALPHA * p50.p50 * 1.01


def test_subtracting_what_was_added_leaves_nothing() -> None:
    """A deletion's negative counts cancel buckets out of the merge."""
    added = [(10, 3), (11, 1)]
    removed = [(10, -3), (11, -1)]
    assert sketch.merge(added, removed) == {}
    assert sketch.percentiles({}) is None


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_an_exact_quantile_reads_only_its_buckets_and_equals_quantile_cont(
    values: list[int], q: float
) -> None:
    """The threshold of a slow split: exact, from the durations of at most the buckets of
    the two order statistics, and the count at or above it among what was read."""
    buckets = sketch.merge((sketch.bucket_index(v), 1) for v in values)
    reads: list[tuple[int, int]] = []

    def read(low: int, high: int) -> dict[int, list[int]]:
        reads.append((low, high))
        found: dict[int, list[int]] = {}
        for value in sorted(values):
            if low <= sketch.bucket_index(value) <= high:
                found.setdefault(sketch.bucket_index(value), []).append(value)
        return found

    found = sketch.exact_quantile(buckets, q, read)

    assert found.value == _exact(values, q)
    assert reads == [(found.low, found.high)]
    between = [v for v in values if found.low <= sketch.bucket_index(v) <= found.high]
    assert found.at_least == sum(1 for v in between if v >= found.value)
    assert sum(1 for v in values if v >= found.value) == found.at_least + sum(
        n for index, n in buckets.items() if index > found.high
    )


def test_an_exact_quantile_refuses_a_histogram_counting_more_than_is_stored() -> None:
    """Rollups that count spans the store no longer holds are a bug to surface."""
    buckets = {sketch.bucket_index(1000): 3}
    with pytest.raises(ValueError, match="more spans"):
        sketch.exact_quantile(buckets, 0.9, lambda low, high: {low: [1000]})


def test_the_top_buckets_hold_what_is_wanted_and_no_fewer_would() -> None:
    buckets = {3: 10, 7: 4, 9: 2, 12: 1}
    assert sketch.top_buckets(buckets, 1) == 12
    assert sketch.top_buckets(buckets, 3) == 9
    assert sketch.top_buckets(buckets, 4) == 7
    assert sketch.top_buckets(buckets, 100) == 3
    with pytest.raises(ValueError, match="empty"):
        sketch.top_buckets({}, 1)
