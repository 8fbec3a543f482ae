"""Where in a window a bounded sample of traces is drawn from, so reading it stays cheap.

Tail causes and error hotspots count what a sample of a couple of thousand traces per
group holds. Drawn by a hash of the trace id from the whole window, the sample holds
traces from every minute, and reading their spans reads every block of the window: the
cost grows with the window's traffic, not with the sample. Drawn from *slices* of the
window instead (cluster sampling by minute), the spans read are those of the slices:
when traffic grows ten times, the slices needed are ten times narrower and the read
stays the same size.

The slices are spread evenly over the window so that a slow period of a few minutes
is represented in proportion to its length: the window is cut into ``MAX_SLICES``
equal blocks, and each block lends its first ``share`` of its length. ``share`` is the
smallest (to within ``SHARE_PRECISION``) whose slices hold enough requests of both groups
by the per-minute counts of the rollups (a minute partly read counts in proportion): the
read costs in proportion to it, and a power of one half would read up to twice what is
needed. A slow split's threshold falls inside a bucket, so each minute counts the
share of its requests there that the whole window has above the threshold
(``minute_counts``). When the traces found fall short (several requests in one trace,
a minute slower or faster than its share), it doubles. Inside the slices the traces
are still taken in the order of a hash of their id.

Reading a sampled trace's spans then covers the time from its first span's start to
its last span's start; ``covering`` merges those intervals into a few ranges, so the
store reads ranges that zone maps (or a primary key) can skip between.

Pure: times are integer nanoseconds, counts come from the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Final, TypeVar

# Slices (and ranges of a read) at most: each is one range of the span table.
MAX_SLICES: Final = 16
# Slices are chosen to hold this many times the requests a sample needs: the
# per-minute counts are spread evenly over each minute, and a slow split's focus counts
# share out the threshold's buckets, so a slice may hold fewer than estimated; a second,
# wider pass costs more than the margin does.
MARGIN: Final = 1.2
# The narrowest share looked for: a slice of a 1-hour window is then 0.2 s long.
MIN_SHARE: Final = 2.0**-10
# The share found is at most this much wider than the narrowest that holds enough.
SHARE_PRECISION: Final = 0.02
# Traces drawn from slices beyond the sample, per thousand (at least ``SPARE_MIN``): a
# slice may hold only the ordinary request of a trace whose slow (or failed) one lies
# outside every slice; drawn as baseline, it shows as a *misfit* once the sample's
# spans are read and is left out (``kept``), and a spare takes its place.
SPARE_PER_THOUSAND: Final = 20
SPARE_MIN: Final = 2
# Draws at most, when misfits leave the baseline short (``respare``): each draws at
# least twice the spare of the one before, sized by the misfits it found.
MAX_DRAWS: Final = 3

Range = tuple[int, int]
# Rows of a rollup histogram: (minute, bucket, requests).
BucketRow = tuple[int, int, int]
# Requests of a minute: (minute, requests).
MinuteRow = tuple[int, int]
T = TypeVar("T")


def minute_counts(
    requests: Iterable[MinuteRow],
    focus: Iterable[BucketRow],
    partly: tuple[int, int, float] | None = None,
) -> dict[int, tuple[float, float]]:
    """The (focus, baseline) requests of each minute, from the requests of each minute
    (several rows of one minute add up) and the rows of the focus ones.

    ``partly`` = ``(low, high, share)``: only ``share`` of the focus rows' requests in
    buckets ``low`` to ``high`` are focus (a slow split's threshold falls inside them).
    Each minute then counts that share of its requests there: counted whole, they made
    the focus of a percentile split look larger than it is (62% larger on a workload
    whose durations cluster), so slices chosen by them held too few and had to widen,
    reading the window a second time.
    """
    totals: dict[int, float] = {}
    for minute, n in requests:
        totals[minute] = totals.get(minute, 0.0) + n
    focused: dict[int, float] = {}
    for minute, bucket, n in focus:
        counted = float(n)
        if partly is not None and partly[0] <= bucket <= partly[1]:
            counted *= partly[2]
        focused[minute] = focused.get(minute, 0.0) + counted
    return {
        minute: (focused.get(minute, 0.0), total - focused.get(minute, 0.0))
        for minute, total in totals.items()
    }


def slices(start: int, end: int, share: float) -> list[Range]:
    """The ``[start, end)`` ranges a ``share`` of the window ``[start, end)`` reads: each
    of ``MAX_SLICES`` equal blocks lends its first ``share`` (adjacent ones merged)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    length = end - start
    blocks = max(1, min(MAX_SLICES, length))
    runs: list[Range] = []
    for block in range(blocks):
        low = start + block * length // blocks
        high = start + (block + 1) * length // blocks
        taken = low + max(1, math.ceil(share * (high - low)))
        if runs and runs[-1][1] == low:
            runs[-1] = (runs[-1][0], min(high, taken))
        else:
            runs.append((low, min(high, taken)))
    return runs


def held(
    runs: Iterable[Range], per_minute: Mapping[int, tuple[float, float]], minute_ns: int
) -> tuple[float, float]:
    """About how many (focus, baseline) requests the runs hold: each minute's counts in
    proportion to the part of it the runs cover."""
    focus = baseline = 0.0
    for low, high in runs:
        for minute in range(low // minute_ns, -(-high // minute_ns)):
            counts = per_minute.get(minute)
            if counts is None:
                continue
            part = min(high, (minute + 1) * minute_ns) - max(low, minute * minute_ns)
            focus += counts[0] * part / minute_ns
            baseline += counts[1] * part / minute_ns
    return focus, baseline


def narrowest_share(
    start: int,
    end: int,
    per_minute: Mapping[int, tuple[float, float]],
    minute_ns: int,
    wanted: float,
) -> float:
    """The smallest share (at least ``MIN_SHARE``, within ``SHARE_PRECISION`` of the
    narrowest) whose slices hold about ``wanted`` requests of each group, or all of a
    group smaller than that. What slices hold only grows with the share, so it is
    bisected (in the logarithm of the share, its scale)."""
    total = held([(start, end)], per_minute, minute_ns)
    goal = (min(wanted, total[0]), min(wanted, total[1]))

    def enough(share: float) -> bool:
        found = held(slices(start, end, share), per_minute, minute_ns)
        return found[0] >= goal[0] and found[1] >= goal[1]

    if enough(MIN_SHARE):
        return MIN_SHARE
    narrow, wide = MIN_SHARE, 1.0  # not enough at ``narrow``; enough at ``wide`` (all)
    while wide > narrow * (1 + SHARE_PRECISION):
        middle = math.sqrt(narrow * wide)
        if enough(middle):
            wide = middle
        else:
            narrow = middle
    return wide


def drawn(
    start: int,
    end: int,
    per_minute: Mapping[int, tuple[float, float]],
    minute_ns: int,
    needed: int,
    draw: Callable[[list[Range], tuple[float, float]], tuple[T, tuple[int, int]]],
) -> T:
    """A sample of ``needed`` traces per group, drawn from the narrowest slices of the
    window ``[start, end)`` that hold them.

    ``draw(runs, held)`` draws from the runs (which hold about ``held`` requests of each
    group) and returns its sample with the (focus, baseline) traces it found. When a
    group falls short while the window holds more of it, the slices widen.
    """
    everything = held([(start, end)], per_minute, minute_ns)
    share = narrowest_share(start, end, per_minute, minute_ns, MARGIN * needed)
    while True:
        runs = slices(start, end, share)
        there = held(runs, per_minute, minute_ns)
        sample, (focus, baseline) = draw(runs, there)
        short = (focus < needed and there[0] < everything[0]) or (
            baseline < needed and there[1] < everything[1]
        )
        if not short or share >= 1:
            return sample
        share = min(1.0, share * 2)


def covering(intervals: Iterable[Range], max_ranges: int = MAX_SLICES) -> list[Range]:
    """At most ``max_ranges`` closed ranges covering every interval: overlapping ones
    merged, then the smallest gaps closed first (the fewest extra rows read)."""
    if max_ranges < 1:
        raise ValueError(f"max_ranges must be at least 1, got {max_ranges}")
    merged: list[Range] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    if len(merged) <= max_ranges:
        return merged
    gaps = sorted(range(1, len(merged)), key=lambda i: merged[i][0] - merged[i - 1][1])
    kept_gaps = set(gaps[len(merged) - max_ranges :])
    ranges = [merged[0]]
    for i in range(1, len(merged)):
        if i in kept_gaps:
            ranges.append(merged[i])
        else:
            ranges[-1] = (ranges[-1][0], merged[i][1])
    return ranges


def within(ranges: Iterable[Range], bounds: Range) -> list[Range]:
    """Closed ``ranges`` clipped to the closed ``bounds``, the empty ones left out."""
    clipped = [(max(low, bounds[0]), min(high, bounds[1])) for low, high in ranges]
    return [(low, high) for low, high in clipped if low <= high]


def spare(sample: int) -> int:
    """How many traces beyond ``sample`` a draw from slices takes for each group."""
    return max(SPARE_MIN, sample * SPARE_PER_THOUSAND // 1000)


def refilled(sample: int, spare: int, draw: Callable[[int], tuple[T, int, int]]) -> T:
    """What ``draw(sample + spare)`` gives, drawn again with more spares (``respare``)
    while misfits leave the baseline short, ``MAX_DRAWS`` times at most. ``draw(n)``
    draws ``n`` traces a group and returns its result, the baseline traces it drew and
    the misfits among them."""
    drawn, baseline, misfits = draw(sample + spare)
    for _ in range(MAX_DRAWS - 1):
        more = respare(sample, spare, baseline, misfits)
        if more is None:
            break
        spare = more
        drawn, baseline, misfits = draw(sample + spare)
    return drawn


def respare(sample: int, spare: int, baseline_drawn: int, misfits: int) -> int | None:
    """The spare of another draw when the baseline's misfits left it short of ``sample``
    while the draw found all it asked for (so more baseline traces may be there): as
    many more as the misfits' share calls for, with ``MARGIN``, at least twice the
    spare. None when the baseline is whole, or the draw found all there was."""
    fitting = baseline_drawn - misfits
    if fitting >= sample or baseline_drawn < sample + spare:
        return None
    needed = math.ceil(MARGIN * sample * baseline_drawn / max(fitting, 1))
    return max(needed - sample, 2 * spare)


def kept(drawn: Sequence[tuple[str, bool]], misfits: Set[str], sample: int) -> list[int]:
    """The places in ``drawn`` (trace id, focus; in the draw's order) that each group
    keeps: its first ``sample`` traces but the baseline's misfits."""
    places: list[int] = []
    held = {True: 0, False: 0}
    for place, (trace, focus) in enumerate(drawn):
        if held[focus] < sample and (focus or trace not in misfits):
            places.append(place)
            held[focus] += 1
    return places
