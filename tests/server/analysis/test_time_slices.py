"""Slices of a window a sample is drawn from, and the few ranges a read of it covers."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.server.analysis import time_slices

MINUTE = 60_000_000_000

Runs = list[tuple[int, int]]
Draw = Callable[[Runs, tuple[float, float]], tuple[Runs, tuple[int, int]]]


@given(
    start=st.integers(min_value=0, max_value=10**6),
    length=st.integers(min_value=1, max_value=10**6),
    halvings=st.integers(min_value=0, max_value=12),
)
def test_slices_are_few_spread_over_the_window_and_about_the_share(
    start: int, length: int, halvings: int
) -> None:
    share = 2.0**-halvings
    runs = time_slices.slices(start, start + length, share)
    assert 1 <= len(runs) <= time_slices.MAX_SLICES
    assert all(start <= low < high <= start + length for low, high in runs)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(runs)), "disjoint, in order"
    assert runs[0][0] == start
    blocks = min(time_slices.MAX_SLICES, length)
    if length >= blocks * 2**halvings:
        # Every block lends its first share (rounded up): each block is read.
        assert len(runs) == (1 if share == 1 else blocks)
        read = sum(high - low for low, high in runs)
        assert share * length <= read <= share * length + blocks
        # The last slice starts in the window's last block: the whole window is spanned.
        assert share == 1 or runs[-1][0] == start + (blocks - 1) * length // blocks


def test_a_whole_share_is_the_whole_window() -> None:
    assert time_slices.slices(10, 1000, 1.0) == [(10, 1000)]
    with pytest.raises(ValueError, match="share"):
        time_slices.slices(10, 1000, 0.0)


def test_held_counts_a_minute_in_proportion_to_the_part_read() -> None:
    per_minute = {0: (60, 600), 1: (6, 60)}
    assert time_slices.held([(0, 2 * MINUTE)], per_minute, MINUTE) == (66, 660)
    assert time_slices.held([(MINUTE // 2, 3 * MINUTE // 2)], per_minute, MINUTE) == (33, 330)
    sixth, third_minute = MINUTE // 6, (2 * MINUTE, 3 * MINUTE)
    assert time_slices.held([(0, sixth), third_minute], per_minute, MINUTE) == (10, 100)


def test_the_narrowest_share_holds_what_is_wanted_and_no_narrower_would() -> None:
    # An hour of 1,000 focus and 9,000 baseline requests a minute.
    per_minute = {minute: (1000, 9000) for minute in range(60)}
    end = 60 * MINUTE
    share = time_slices.narrowest_share(0, end, per_minute, MINUTE, 2400)
    held = time_slices.held(time_slices.slices(0, end, share), per_minute, MINUTE)
    narrower_share = share / (1 + time_slices.SHARE_PRECISION)
    narrower = time_slices.held(time_slices.slices(0, end, narrower_share), per_minute, MINUTE)
    assert held[0] >= 2400 > narrower[0]
    # 2,400 of the hour's 60,000 focus requests: a twenty-fifth of it is read, not the
    # sixteenth a power of one half would be.
    assert 0.99 / 25 <= share <= (1 + time_slices.SHARE_PRECISION) / 25
    # Ten times the traffic: a tenth of the window, so the read stays the same size.
    busier = {minute: (10 * f, 10 * b) for minute, (f, b) in per_minute.items()}
    busier_share = time_slices.narrowest_share(0, end, busier, MINUTE, 2400)
    assert 0.99 / 250 <= busier_share <= (1 + time_slices.SHARE_PRECISION) / 250
    # A group smaller than wanted is read whole.
    few = {**per_minute, 7: (5, 9000)} | {m: (0, 9000) for m in range(60) if m != 7}
    assert time_slices.narrowest_share(0, end, few, MINUTE, 2400) == 1.0


def test_the_narrowest_share_stops_at_its_floor() -> None:
    per_minute = {0: (10**12, 10**12)}
    share = time_slices.narrowest_share(0, MINUTE, per_minute, MINUTE, 1)
    assert share == time_slices.MIN_SHARE


@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**4)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=20),
)
def test_covering_ranges_are_few_and_cover_every_interval(
    intervals: list[tuple[int, int]], most: int
) -> None:
    ranges = time_slices.covering(intervals, most)
    assert len(ranges) <= most
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    for low, high in intervals:
        assert any(r_low <= low and high <= r_high for r_low, r_high in ranges)
    if len({*intervals}) <= most and all(
        a[1] < b[0] for a, b in zip(sorted(intervals), sorted(intervals)[1:], strict=False)
    ):
        assert ranges == sorted(set(intervals)), "disjoint intervals are kept apart"


def test_covering_closes_the_smallest_gaps_first() -> None:
    intervals = [(0, 10), (12, 20), (100, 110), (1000, 1010)]
    assert time_slices.covering(intervals, 3) == [(0, 20), (100, 110), (1000, 1010)]
    assert time_slices.covering(intervals, 2) == [(0, 110), (1000, 1010)]
    assert time_slices.covering([], 2) == []


def _drawing(
    per_minute: dict[int, tuple[int, int]], requests_per_trace: tuple[int, int]
) -> tuple[list[Runs], Draw]:
    """A ``draw`` that finds the traces its runs hold (each trace holding several of
    a group's requests), and the runs it was called with, in order."""
    calls: list[Runs] = []

    def draw(runs: Runs, held: tuple[float, float]) -> tuple[Runs, tuple[int, int]]:
        calls.append(runs)
        found = time_slices.held(runs, per_minute, MINUTE)
        traces = (found[0] / requests_per_trace[0], found[1] / requests_per_trace[1])
        return runs, (int(traces[0]), int(traces[1]))

    return calls, draw


def test_a_sample_short_of_traces_widens_its_slices_until_it_has_them() -> None:
    # An hour of 100 focus and 900 baseline requests a minute, and each slow trace
    # holds four focus requests: slices sized by requests hold a quarter of the traces.
    per_minute = {minute: (100, 900) for minute in range(60)}
    calls, draw = _drawing(per_minute, (4, 1))
    runs = time_slices.drawn(0, 60 * MINUTE, per_minute, MINUTE, 500, draw)
    assert runs == calls[-1]
    widths = [sum(high - low for low, high in call) for call in calls]
    assert len(calls) == 3, "two doublings: a quarter of the traces needs four times the width"
    assert widths[1] >= 2 * widths[0] - 16
    assert widths[2] >= 2 * widths[1] - 16
    focus, _ = time_slices.held(runs, per_minute, MINUTE)
    assert focus / 4 >= 500, "the last slices hold the traces wanted"
    narrower = time_slices.held(calls[-2], per_minute, MINUTE)
    assert narrower[0] / 4 < 500, "and it stopped at the first that did"


def test_a_sample_needing_no_more_is_drawn_once() -> None:
    per_minute = {minute: (100, 900) for minute in range(60)}
    calls, draw = _drawing(per_minute, (1, 1))
    runs = time_slices.drawn(0, 60 * MINUTE, per_minute, MINUTE, 500, draw)
    assert calls == [runs]
    assert runs != [(0, 60 * MINUTE)], "a narrow share of the hour was enough"


def test_a_group_short_everywhere_stops_at_the_whole_window() -> None:
    # The rollups count requests the draw never finds (a split whose focus the spans
    # do not hold): the slices widen to the whole window, then the draw ends.
    per_minute = {minute: (100, 900) for minute in range(60)}
    calls, draw = _drawing(per_minute, (10**9, 1))
    runs = time_slices.drawn(0, 60 * MINUTE, per_minute, MINUTE, 500, draw)
    assert runs == [(0, 60 * MINUTE)] == calls[-1]
    assert len(calls) <= 1 + -math.log2(time_slices.MIN_SHARE)
    # A group the whole window holds fewer of than needed does not widen anything.
    few = {minute: (1, 900) for minute in range(60)}
    calls, draw = _drawing(few, (1, 1))
    time_slices.drawn(0, 60 * MINUTE, few, MINUTE, 500, draw)
    assert len(calls) == 1


# An hour of a slow split, as the rollups count it: each minute 900 fast requests
# (bucket 10), 200 in the threshold's bucket (20) of which a tenth is slow, and 80 above
# it (bucket 30). Rows of every request, and of the focus (from the threshold's bucket up).
SLOW_HOUR: Final = [
    (minute, bucket, n) for minute in range(60) for bucket, n in ((10, 900), (20, 200), (30, 80))
]
SLOW_HOUR_FOCUS: Final = [(minute, bucket, n) for minute, bucket, n in SLOW_HOUR if bucket >= 20]
# Every request of the hour, per minute.
SLOW_HOUR_REQUESTS: Final = [(minute, n) for minute, _, n in SLOW_HOUR]


def test_minute_counts_share_out_the_threshold_buckets() -> None:
    per_minute = time_slices.minute_counts(SLOW_HOUR_REQUESTS, SLOW_HOUR_FOCUS, (20, 20, 0.1))
    assert per_minute[0] == pytest.approx((100.0, 1080.0))
    assert sum(f for f, _ in per_minute.values()) == pytest.approx(60 * 100)
    # Without a share, the focus counts the whole bucket; a failed split has none.
    assert time_slices.minute_counts(SLOW_HOUR_REQUESTS, SLOW_HOUR_FOCUS)[0] == (280.0, 900.0)


def test_slices_chosen_by_shared_out_counts_need_no_second_draw() -> None:
    # The draw finds the true slow requests: 100 a minute of the 280 in the rows.
    truth = {minute: (100, 1080) for minute in range(60)}
    draws = []
    for partly in ((20, 20, 0.1), None):
        calls, draw = _drawing(truth, (1, 1))
        per_minute = time_slices.minute_counts(SLOW_HOUR_REQUESTS, SLOW_HOUR_FOCUS, partly)
        time_slices.drawn(0, 60 * MINUTE, per_minute, MINUTE, 2000, draw)
        draws.append(len(calls))
    assert draws[0] == 1, "the slices chosen held the slow requests wanted"
    assert draws[1] > 1, "counted whole, the bucket promised slow requests it did not hold"


def test_each_group_keeps_its_first_traces_but_the_baseline_misfits() -> None:
    drawn = [("f1", True), ("b1", False), ("b2", False), ("f2", True), ("b3", False)]
    # A misfit is left out of the baseline; a spare takes its place.
    assert time_slices.kept(drawn, {"b2"}, 2) == [0, 1, 3, 4]
    # A focus trace is never a misfit (the focus condition drew it).
    assert time_slices.kept(drawn, {"f1"}, 1) == [0, 1]


def test_misfits_beyond_the_spare_call_for_a_draw_sized_by_their_share() -> None:
    # 22 drawn, 6 misfits: 16 fit, short of 20; 22/16 × 20 × 1.2 = 33 to draw.
    assert time_slices.respare(20, 2, 22, 6) == 13
    # The spare covered them, or the draw found every baseline trace there was.
    assert time_slices.respare(20, 2, 22, 2) is None
    assert time_slices.respare(20, 2, 21, 6) is None
    # All misfits: sized as if one had fitted.
    assert time_slices.respare(20, 10, 30, 30) == 700
    assert time_slices.spare(2000) == 40
    assert time_slices.spare(20) == time_slices.SPARE_MIN


def test_a_draw_short_of_fitting_traces_is_drawn_again_a_bounded_number_of_times() -> None:
    asked: list[int] = []

    def draw(wanted: int) -> tuple[int, int, int]:
        # A third of every baseline drawn are misfits.
        asked.append(wanted)
        return wanted, wanted, wanted // 3

    assert time_slices.refilled(20, 2, draw) == asked[-1]
    assert asked[0] == 22
    assert asked[-1] - asked[-1] // 3 >= 20  # the last draw holds the sample
    assert len(asked) == 2

    def hopeless(wanted: int) -> tuple[int, int, int]:
        asked.append(wanted)
        return wanted, wanted, wanted  # every baseline trace a misfit

    asked.clear()
    time_slices.refilled(20, 2, hopeless)
    assert len(asked) == time_slices.MAX_DRAWS
    asked.clear()
    # No misfits: drawn once.
    time_slices.refilled(20, 2, lambda wanted: (asked.append(wanted), wanted, 0))
    assert asked == [22]
