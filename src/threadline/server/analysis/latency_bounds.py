"""The fixed latency bounds of ``/metrics`` histograms, mapped onto the sketch's buckets.

Prometheus histograms count observations at or below fixed bounds (``le``); the
rollups hold log-spaced sketch buckets (``sketch``). Each bound is mapped to the
sketch bucket that holds it (``bucket_index(bound)``), and a sketch bucket counts
under the first bound whose bucket is at or above its own. A bound's count is then
exact for every duration further than one bucket (2%) from the bound; a duration
between the bound and 2% above it may count at or below it (the same 2% the rollups
promise for percentiles). The exemplar table keeps one trace per *slot*, the span
between two bounds, so its slots are the same.

The bounds are the ones people pick for request latency (Prometheus' defaults with
300 ms and 30 s/60 s added): a latency SLO threshold of 100, 250, 300 or 500 ms, 1 s,
2.5 s, ... reads straight off a bucket. Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from threadline.server.analysis import sketch

NS_PER_S: Final = 1_000_000_000
BOUNDS_S: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# The sketch bucket holding each bound; slot ``k`` holds sketch buckets up to
# ``BOUND_BUCKETS[k]`` (and above the previous one); slot ``len(BOUNDS_S)`` is +Inf.
BOUND_BUCKETS: Final[tuple[int, ...]] = tuple(
    sketch.bucket_index(round(bound * NS_PER_S)) for bound in BOUNDS_S
)
SLOTS: Final = len(BOUNDS_S) + 1


def slot(bucket: int) -> int:
    """The slot of sketch bucket ``bucket``: the first bound whose bucket is at or above it."""
    return bisect_left(BOUND_BUCKETS, bucket)


def cumulative(per_slot: list[int] | tuple[int, ...]) -> list[int]:
    """Counts per slot as Prometheus' cumulative ``le`` counts (the last is +Inf)."""
    total = 0
    out: list[int] = []
    for count in per_slot:
        total += count
        out.append(total)
    return out


def le_labels() -> list[str]:
    """The ``le`` label values in slot order, ``+Inf`` last, as Prometheus writes floats."""
    return [repr(bound) for bound in BOUNDS_S] + ["+Inf"]
