"""Budget burndown and SLO state: hand-computed values from nested-window counts."""

from __future__ import annotations

from typing import Final

import pytest

from threadline.server.analysis.burn import Counts
from threadline.server.analysis.burndown import (
    SloState,
    burn_series,
    burndown,
    series_steps,
    slo_state,
    suffix_lengths,
)

MINUTE: Final = 60_000_000_000
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR


def test_suffix_lengths_start_at_the_window_and_step_evenly() -> None:
    """A 30-day window read at 60 points: every 12 hours, longest first, whole minutes."""
    lengths = suffix_lengths(30 * DAY, MINUTE)
    assert lengths[0] == 30 * DAY
    assert lengths[1] == 30 * DAY - 12 * HOUR
    assert lengths[-1] == 12 * HOUR
    assert len(lengths) == 60
    assert all(length % MINUTE == 0 for length in lengths)


def test_short_windows_step_by_at_least_a_minute() -> None:
    """An hour at 60 points is one point a minute; never a zero-length window."""
    lengths = suffix_lengths(HOUR, MINUTE)
    assert lengths == [HOUR - n * MINUTE for n in range(60)]


def test_burndown_subtracts_each_suffix_from_the_window() -> None:
    """500 events, 220 bad at 99%: 5 allowed. 20 bad before the middle, 220 by now."""
    now = 100 * DAY
    lengths = [3 * DAY, 2 * DAY, DAY]
    suffixes = [Counts(good=280, total=500), Counts(good=280, total=500), Counts(200, 400)]
    points = burndown(now, 0.99, lengths, suffixes)
    assert [p.at_ns for p in points] == [now - 3 * DAY, now - 2 * DAY, now - DAY, now]
    assert [p.bad for p in points] == [0, 0, 20, 220]
    assert [p.remaining for p in points] == pytest.approx([1.0, 1.0, -3.0, -43.0])


def test_no_events_means_no_budget_to_speak_of() -> None:
    """With an empty window every point's remaining share is None."""
    points = burndown(10 * DAY, 0.99, [DAY], [Counts(0, 0)])
    assert [p.remaining for p in points] == [None, None]


def test_burndown_needs_one_count_per_length() -> None:
    """A mismatch is a caller's bug and says so."""
    with pytest.raises(ValueError, match="one count per length"):
        burndown(0, 0.99, [DAY, HOUR], [Counts(0, 0)])


@pytest.mark.parametrize(
    ("firing", "pending", "remaining", "burn_1h", "state"),
    [
        (True, False, 0.9, 0.5, SloState.FIRING),
        (False, True, 0.9, 0.5, SloState.BURNING),
        (False, False, 0.0, 0.5, SloState.BURNING),
        (False, False, 0.9, 1.5, SloState.BURNING),
        (False, False, 0.9, 1.0, SloState.OK),
        (False, False, None, None, SloState.OK),
    ],
)
def test_slo_state(
    firing: bool, pending: bool, remaining: float | None, burn_1h: float | None, state: SloState
) -> None:
    """Firing wins; a pending alert, a spent budget or a 1h burn above 1 is burning."""
    assert slo_state(firing=firing, pending=pending, remaining=remaining, burn_1h=burn_1h) is state


def test_burn_series_is_oldest_first_at_each_window_s_end() -> None:
    """counts[k] ends k hours before now: 10 of 100 bad at 99% burns 10, none is None."""
    now = 10 * DAY
    points = burn_series(now, HOUR, 0.99, [Counts(90, 100), Counts(0, 0), Counts(100, 100)])
    assert [p.at_ns for p in points] == [now - 2 * HOUR, now - HOUR, now]
    assert points[0].burn == pytest.approx(0.0)
    assert points[1].burn is None
    assert points[2].burn == pytest.approx(10.0)
    assert points[2].counts == Counts(90, 100)


def test_series_cover_three_days_or_a_shorter_slo_window() -> None:
    """72 hours and 12 six-hour windows over three days; a 1-day SLO's only 24 and 4;
    a window longer than the SLO's still gets one point."""
    assert (series_steps(HOUR, 30 * DAY), series_steps(6 * HOUR, 30 * DAY)) == (72, 12)
    assert (series_steps(HOUR, DAY), series_steps(6 * HOUR, DAY)) == (24, 4)
    assert series_steps(6 * HOUR, HOUR) == 1
