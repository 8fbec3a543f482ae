"""How far a figure read from a sample may be from its whole group's, and whether two
ranked figures can be told apart at that sample's size.

Tail causes and error hotspots count a bounded sample of each group's traces (two
thousand, and a hundred for critical paths). A mean or a share over ``n`` of a group's
``population`` traces is off from the whole group's by about its standard error; the
*margin* given with each ranked figure is the half-width of its 95% interval: 1.96
standard errors (the normal approximation, sound for samples of hundreds), times the
finite-population correction sqrt(1 - n / population), so a sample that holds the
whole group has none. A difference of two such figures (focus against baseline, or two
rows of a ranking) has the margins of both, combined as independent errors
(sqrt(a² + b²)).

Two rows of a ranking are *apart* when their figures differ by more than that combined
margin; otherwise the order between them is the sample's chance, and a count over
every trace may order them either way. The rankings say so (``tied``) rather than
present a near tie as a finding.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Final

# Standard errors in the half-width of a 95% interval (normal approximation).
Z_95: Final = 1.96


def mean_margin(total: float, squares: float, sampled: int, population: int) -> float:
    """The 95% margin of the mean of a per-trace value over ``sampled`` traces of a group
    of ``population``, given the value's sum and sum of squares over the sample (a trace
    without it counts as zero). Infinite when fewer than two traces were sampled from a
    larger group: one value says nothing of the spread."""
    if sampled >= population or sampled <= 0:
        return 0.0
    if sampled < 2:
        return math.inf
    mean = total / sampled
    variance = max(0.0, (squares - sampled * mean * mean) / (sampled - 1))
    return Z_95 * math.sqrt(variance / sampled) * _unsampled(sampled, population)


def share_margin(count: int, sampled: int, population: int) -> float:
    """The 95% margin of the share ``count / sampled`` of a group of ``population``.

    The share's spread is taken with two traces more on each side (Agresti and Coull's
    adjusted interval): a sampled share of 0 or 1 is not known to be exact, and the
    plain formula would give it no margin at all."""
    if sampled >= population or sampled <= 0:
        return 0.0
    adjusted = sampled + Z_95**2
    share = (count + Z_95**2 / 2) / adjusted
    return Z_95 * math.sqrt(share * (1 - share) / adjusted) * _unsampled(sampled, population)


def log_share_margin(count: int, sampled: int, population: int) -> float:
    """The 95% margin of the logarithm of the add-one smoothed share
    ``(count + 1) / (sampled + 2)`` (as lifts are smoothed): the error of a ratio of
    shares is the sum of its logarithms' errors (the delta method)."""
    if sampled >= population or sampled <= 0:
        return 0.0
    share = (count + 1) / (sampled + 2)
    spread = math.sqrt((1 - share) / ((sampled + 2) * share))
    return Z_95 * spread * _unsampled(sampled, population)


def combined(first: float, second: float) -> float:
    """The margin of a difference (or a ratio's logarithm) of two independent figures."""
    return math.hypot(first, second)


def apart(first: float, first_margin: float, second: float, second_margin: float) -> bool:
    """Whether two figures differ by more than the sample can account for."""
    return abs(first - second) > combined(first_margin, second_margin)


def first_contradiction(
    sampled: Sequence[tuple[Hashable, float, float]], exact: Sequence[Hashable]
) -> tuple[Hashable, Hashable] | None:
    """The first pair of rows, in ``exact``'s order (a ranking's keys), that a sampled
    ranking (each row's key, figure and margin, in its order) holds the other way round
    although its margins tell them apart; ``None`` when the two part only at ties the
    sampled one can see. Rows only one of them ranks are no pair (``left_out`` names
    them)."""
    place = {key: at for at, (key, _, _) in enumerate(sampled)}
    figure = {key: (value, margin) for key, value, margin in sampled}
    ranked = [key for key in exact if key in place]
    for above_at, above in enumerate(ranked):
        for below in ranked[above_at + 1 :]:
            if place[below] < place[above] and apart(*figure[above], *figure[below]):
                return above, below
    return None


def left_out(
    sampled: Sequence[tuple[Hashable, float, float]], exact: Sequence[Hashable]
) -> list[Hashable]:
    """The rows of ``exact`` the sampled ranking does not rank at all."""
    ranked = {key for key, _, _ in sampled}
    return [key for key in exact if key not in ranked]


def _unsampled(sampled: int, population: int) -> float:
    """The finite-population correction: the part of the group the sample left out."""
    return math.sqrt(max(0.0, 1 - sampled / population))
