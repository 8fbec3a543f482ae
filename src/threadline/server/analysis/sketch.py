"""Mergeable latency histograms: log-spaced buckets with a bounded relative error.

The rollups keep, per minute and key, how many durations fell in each bucket, so
any set of minutes merges by adding counts bucket by bucket. Buckets follow
DDSketch (Masson et al., VLDB 2019): with ``γ = (1 + α) / (1 − α)``, bucket ``i``
holds the durations ``d`` with ``γ^(i−1) < d ≤ γ^i`` and stands for the value
``2γ^i / (γ + 1)``, which is within a relative error ``α`` of every duration in
the bucket. ``ALPHA`` is 1%, half the 2% the rollups promise, so rounding of the
bucket boundary (a duration that lands one bucket off because ``log`` is not
exact in floating point) still stays inside the promise.

Percentiles interpolate like ``quantile_cont`` (and the exact scan): the value at
rank ``q·(n−1)`` between the two nearest order statistics. Each order statistic is
estimated by its bucket's value, and a convex combination of two estimates each
within ``α`` of its statistic is within ``α`` of the exact interpolated value.

Durations of zero or less (clock skew, bad input) land in ``ZERO_BUCKET`` and
stand for 0; durations are integer nanoseconds, so no other duration is below 1.

This module is pure (no I/O); the DuckDB store computes the same index in SQL
from ``LOG_GAMMA`` (``storage/duckdb/rollups.py``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from threadline.server.aggregates import Percentiles

ALPHA: Final = 0.01
GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA: Final = math.log(GAMMA)
# Relative error the rollups promise for every percentile (documented, tested).
PROMISED_ERROR: Final = 0.02
# Stands for durations <= 0. Bucket -1 would hold (γ^-2, γ^-1], where no integer lies.
ZERO_BUCKET: Final = -1
QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)


def bucket_index(duration_ns: int) -> int:
    """The bucket holding ``duration_ns``: ``ceil(log_γ d)``, or ``ZERO_BUCKET``."""
    if duration_ns <= 0:
        return ZERO_BUCKET
    return math.ceil(math.log(duration_ns) / LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The value bucket ``index`` stands for (relative error at most ``ALPHA``)."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)


def merge(*histograms: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Counts per bucket of all ``(bucket, count)`` pairs; buckets that cancel to 0 go."""
    merged: dict[int, int] = {}
    for histogram in histograms:
        for index, count in histogram:
            merged[index] = merged.get(index, 0) + count
    return {index: count for index, count in merged.items() if count}


def quantile(buckets: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) as ``quantile_cont`` would give it, within ``ALPHA``.

    ``None`` when the histogram is empty. Negative counts (a subtraction that went
    wrong) are a bug upstream, so they raise rather than bend the answer.
    """
    values = quantiles_of_pairs(buckets.items(), (q,))
    return None if values is None else values[0]


def percentiles(buckets: Mapping[int, int]) -> Percentiles | None:
    """p50, p90, p95 and p99 of a merged histogram; ``None`` when it is empty."""
    return percentiles_of_pairs(buckets.items())


def percentiles_of_pairs(pairs: Iterable[tuple[int, int]]) -> Percentiles | None:
    """``percentiles`` of ``(bucket, count)`` pairs, as a store reads them.

    Rows grouped by bucket (each bucket once) need no mapping built from them
    first, and pairs already in bucket order (``ORDER BY bucket``) sort in one pass.
    """
    values = quantiles_of_pairs(pairs, QUANTILES)
    return None if values is None else percentiles_of(values)


def percentiles_of(values: Sequence[float]) -> Percentiles:
    """``Percentiles`` of the values of ``QUANTILES``, in that order."""
    p50, p90, p95, p99 = values
    return Percentiles(p50=p50, p90=p90, p95=p95, p99=p99)


def quantiles_of_pairs(pairs: Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float] | None:
    """Each of ``qs`` as ``quantile`` gives it, from ``(bucket, count)`` pairs (see
    ``percentiles_of_pairs``).

    A RED series reads four percentiles for every minute of a day, so the buckets are
    sorted once per histogram, not once per percentile.
    """
    _check(qs)
    ordered = sorted(pairs)
    if any(count < 0 for _, count in ordered):
        raise ValueError("a histogram with a negative count cannot be read")
    # seen[i]: the durations in the first i + 1 pairs; rank r lies in the first
    # pair whose running count exceeds r (pairs of no count are never that one).
    seen = list(accumulate(count for _, count in ordered))
    total = seen[-1] if seen else 0
    if total == 0:
        return None
    return quantiles_at(total, qs, lambda rank: ordered[bisect_right(seen, rank)][0])


def order_statistics(total: int, q: float) -> tuple[int, float]:
    """Where the ``q`` quantile of ``total`` durations lies: the rank (0-based) of the
    order statistic at or below it, and how far it is towards the next one. A store
    that finds the buckets of those ranks itself computes the rank the same way, in
    double precision: ``floor(q * (total - 1))``."""
    rank = q * (total - 1)
    below = math.floor(rank)
    return below, rank - below


def quantiles_at(total: int, qs: Sequence[float], bucket_at: Callable[[int], int]) -> list[float]:
    """Each of ``qs`` of ``total`` durations (more than none), interpolated as
    ``quantile_cont`` does between the values of the buckets holding its two order
    statistics; ``bucket_at(rank)``: the bucket of the ``rank``-th smallest duration,
    asked for the rank after ``order_statistics``'s only when it lies between them."""
    _check(qs)
    values = []
    for q in qs:
        below, fraction = order_statistics(total, q)
        low = bucket_value(bucket_at(below))
        if fraction == 0.0:
            values.append(low)
        else:
            values.append(low + fraction * (bucket_value(bucket_at(below + 1)) - low))
    return values


def _check(qs: Sequence[float]) -> None:
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be between 0 and 1, got {q}")


# The durations of the stored requests in buckets ``low`` to ``high``, each bucket's
# sorted ascending: what a store reads to make a histogram's percentile exact.
BucketReader = Callable[[int, int], Mapping[int, Sequence[int]]]


@dataclass(frozen=True, slots=True)
class ExactQuantile:
    """An exact ``quantile_cont`` found through a histogram, and what else the read gave.

    ``low`` and ``high`` are the buckets of the two order statistics it interpolates
    between; ``at_least`` counts the requests of buckets ``low`` to ``high`` at or above
    ``value`` (those of higher buckets all are).
    """

    value: float
    low: int
    high: int
    at_least: int

    def partly(self, buckets: Mapping[int, int]) -> tuple[int, int, float]:
        """``(low, high, share)``: the share of the requests of buckets ``low`` to
        ``high`` (counted by ``buckets``) at or above ``value``."""
        inside = sum(buckets.get(bucket, 0) for bucket in range(self.low, self.high + 1))
        return self.low, self.high, self.at_least / inside if inside else 1.0


def exact_quantile(buckets: Mapping[int, int], q: float, read: BucketReader) -> ExactQuantile:
    """The exact ``q`` quantile of the requests a histogram counts, from one ``read``.

    The histogram says which bucket holds each order statistic and its rank there, so
    only those buckets' durations (a couple of percent of the requests) are read.
    """
    total = sum(buckets.values())
    if total <= 0:
        raise ValueError("an empty histogram has no quantile")
    rank = q * (total - 1)
    below = math.floor(rank)
    low, low_rank = _bucket_of(buckets, below)
    high, high_rank = _bucket_of(buckets, math.ceil(rank))
    durations = read(low, high)
    low_value = _nth(durations, low, low_rank)
    high_value = _nth(durations, high, high_rank)
    value = low_value + (rank - below) * (high_value - low_value)
    at_least = sum(1 for values in durations.values() for duration in values if duration >= value)
    return ExactQuantile(value=value, low=low, high=high, at_least=at_least)


def top_buckets(buckets: Mapping[int, int], wanted: int) -> int:
    """The lowest of the fewest highest buckets that hold at least ``wanted`` durations
    (the lowest bucket of all when they hold fewer): where the slowest ones lie."""
    if not buckets:
        raise ValueError("an empty histogram has no top buckets")
    lowest, held = min(buckets), 0
    for index in sorted(buckets, reverse=True):
        lowest, held = index, held + buckets[index]
        if held >= wanted:
            break
    return lowest


def _bucket_of(buckets: Mapping[int, int], rank: int) -> tuple[int, int]:
    """The bucket holding the ``rank``-th smallest duration (0-based), and its rank there."""
    seen = 0
    for index in sorted(buckets):
        if rank < seen + buckets[index]:
            return index, rank - seen
        seen += buckets[index]
    raise ValueError(f"rank {rank} is beyond the {seen} durations of the histogram")


def _nth(durations: Mapping[int, Sequence[int]], index: int, rank: int) -> int:
    values = durations.get(index, ())
    if rank >= len(values):
        raise ValueError(f"the rollups count more spans in bucket {index} than are stored")
    return int(values[rank])
