"""An SLO's budget burndown over its window, its burn rates over time, and the
one-word status its badges show.

Pure: counts in, points out (no I/O, no clock).

The burndown is the share of the window's error budget left at evenly spaced moments
from the window's start to now. The budget is the whole window's: ``(1 − o)`` of
every event the window holds now, so the last point equals ``Budget.remaining``.
The counts come from one store read of nested windows that all end now (the read
every burn rate already uses): the events *before* a moment ``t`` are the window's
events minus those of the window ``[t, now)``::

    window start                t                now
        |-----------------------|-----------------|
        |<-- spent by t ------->|<-- suffix(t) -->|
        spent(t) = window − suffix(t)

For a journey SLO the counts are journeys: ``spent(t)`` is then the journeys bad in
the window but not since ``t`` (a journey still going on is counted once, at its
latest bad step), so the line still only falls.

The burn-rate series samples the burn over a window ``w`` (``1h``, ``6h``) at every
``w`` back from now: back-to-back windows, each what that burn rate was at its end.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.burn import DAY_NS, HOUR_NS, Counts, burn_rate

# The burn rates charted over time, with the page rules' long windows, and how far
# back: the longest burn window (a shorter SLO window bounds it).
SERIES_WINDOWS: Final[tuple[tuple[str, int], ...]] = (("1h", HOUR_NS), ("6h", 6 * HOUR_NS))
SERIES_SPAN_NS: Final = 3 * DAY_NS

# Points of a burndown: one per half day of a 30-day window; a chart of this many
# points reads well at any width, and the read groups by this many windows.
BURNDOWN_POINTS: Final = 60


class SloState(enum.StrEnum):
    """What an SLO's badge says: ``firing`` (an alert fires), ``burning`` (an alert is
    pending, the budget is spent, or the last hour spends it faster than allowed), or
    ``ok``."""

    OK = "ok"
    BURNING = "burning"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class BurndownPoint:
    at_ns: int
    bad: int  # bad events from the window's start to ``at_ns``
    remaining: float | None  # share of the budget left; None with no events


def suffix_lengths(window_ns: int, minute_ns: int, points: int = BURNDOWN_POINTS) -> list[int]:
    """The lengths of the windows ending now to read, whole minutes, longest first.

    The first is the window itself; the moments are ``now − length`` for each.
    """
    step = max(minute_ns, window_ns // points // minute_ns * minute_ns)
    lengths = list(range(window_ns // minute_ns * minute_ns, 0, -step))
    return lengths[: points + 1]


def burndown(
    now_ns: int, objective: float, lengths: Sequence[int], suffixes: Sequence[Counts]
) -> list[BurndownPoint]:
    """The burndown at ``now_ns − length`` for each length (``suffix_lengths``), then now.

    ``suffixes[i]`` are the events of ``[now − lengths[i], now)``; ``lengths[0]`` is
    the SLO's window.
    """
    if len(lengths) != len(suffixes) or not lengths:
        raise ValueError("burndown needs one count per length, and at least one")
    window = suffixes[0]
    allowed = (1.0 - objective) * window.total
    points = []
    for length, suffix in [*zip(lengths, suffixes, strict=True), (0, Counts(0, 0))]:
        bad = max(window.bad - suffix.bad, 0)
        remaining = None if allowed <= 0 else 1.0 - bad / allowed
        points.append(BurndownPoint(at_ns=now_ns - length, bad=bad, remaining=remaining))
    return points


@dataclass(frozen=True, slots=True)
class BurnPoint:
    at_ns: int  # the end of the window the burn is over
    counts: Counts
    burn: float | None  # None with no events


def series_steps(window_ns: int, slo_window_ns: int, span_ns: int = SERIES_SPAN_NS) -> int:
    """How many back-to-back windows of ``window_ns`` a series covers (at least one)."""
    return max(1, min(span_ns, slo_window_ns) // window_ns)


def burn_series(
    now_ns: int, window_ns: int, objective: float, counts: Sequence[Counts]
) -> list[BurnPoint]:
    """The burn over ``window_ns`` at each window's end, oldest first; ``counts[k]``
    are the events of the window ending ``k`` windows before ``now_ns``."""
    points = [
        BurnPoint(at_ns=now_ns - k * window_ns, counts=c, burn=burn_rate(c, objective))
        for k, c in enumerate(counts)
    ]
    return points[::-1]


def slo_state(
    *, firing: bool, pending: bool, remaining: float | None, burn_1h: float | None
) -> SloState:
    if firing:
        return SloState.FIRING
    spent = remaining is not None and remaining <= 0.0
    fast = burn_1h is not None and burn_1h > 1.0
    return SloState.BURNING if pending or spent or fast else SloState.OK
