"""What makes users leave: journeys that stopped at a funnel step against those that went on.

Pure. For the drop-off after step k, every journey that reached step k is in one of
two groups: *stopped* (never reached step k+1) or *went on*. What each journey met
"just before" is read from its traces from the one that reached step k up to the
one that reached step k+1 (for those that stopped, to the end of the journey):

- an error in a service (a failed span of that service in one of those traces);
- a slow step: the trace that reached step k took longer than the step's p90 over
  every journey that reached it.

A factor is ranked by the one-sided Fisher test ``attribute_signal`` uses for "what
slow requests have in common" (stopped journeys as the focus, the ones that went on
as the baseline), with the same Bonferroni rule over the factors tested and the
same minimum support. The ratio is how many times as often journeys meeting the
factor stopped as journeys that did not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.attribute_signal import fisher_greater, significant, supported
from threadline.server.analysis.funnel import Progress, StepMatch
from threadline.server.journey_model import JourneyTrace

# Stopped journeys a factor must be met on to be listed (as for attribute values).
MIN_SUPPORT: Final = 3
# Example traces per factor.
EXAMPLES: Final = 3


@dataclass(frozen=True, slots=True)
class Factor:
    """Something met just before a drop-off, and how it goes with stopping."""

    kind: str  # "error" (in ``service``) or "slow"
    service: str | None
    stopped_with: int
    stopped: int
    went_on_with: int
    went_on: int
    ratio: float
    p_value: float
    significant: bool
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DropOff:
    """Journeys lost between ``source`` and ``target``, and the factors found."""

    source: StepMatch
    target: StepMatch
    stopped: int
    went_on: int
    factors: tuple[Factor, ...]
    headline: str | None


def drop_offs(journeys: Sequence[Progress], steps: Sequence[StepMatch]) -> list[DropOff]:
    """One comparison per pair of consecutive funnel steps."""
    return [_drop_off(journeys, steps, k) for k in range(len(steps) - 1)]


def _before(journey: Progress, k: int) -> list[JourneyTrace]:
    first = journey.reached[k]
    until = journey.reached[k + 1] if len(journey.reached) > k + 1 else None
    chosen: list[JourneyTrace] = []
    started = False
    for trace in journey.traces:
        if trace is first:
            started = True
        if trace is until:
            break
        if started:
            chosen.append(trace)
    return chosen


def _p90(values: list[int]) -> float:
    ordered = sorted(values)
    rank = 0.9 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _drop_off(journeys: Sequence[Progress], steps: Sequence[StepMatch], k: int) -> DropOff:
    at_step = [j for j in journeys if len(j.reached) > k]
    stopped = [j for j in at_step if len(j.reached) == k + 1]
    went_on = [j for j in at_step if len(j.reached) > k + 1]
    met: dict[tuple[str, str | None], tuple[list[Progress], list[Progress]]] = {}
    slow_over = _p90([j.reached[k].duration_ns for j in at_step]) if at_step else 0.0
    for group, journeys_in in ((0, stopped), (1, went_on)):
        for journey in journeys_in:
            context = _before(journey, k)
            keys: set[tuple[str, str | None]] = {
                ("error", service) for trace in context for service in trace.error_services
            }
            if journey.reached[k].duration_ns > slow_over:
                keys.add(("slow", None))
            for key in keys:
                met.setdefault(key, ([], []))[group].append(journey)
    factors = [
        _factor(kind, service, pair, len(stopped), len(went_on), k, len(met))
        for (kind, service), pair in met.items()
        if supported(len(pair[0]), len(stopped), MIN_SUPPORT)
    ]
    factors.sort(key=lambda f: (not f.significant, f.p_value, -f.ratio, f.kind, f.service or ""))
    source, target = steps[k], steps[k + 1]
    return DropOff(
        source=source,
        target=target,
        stopped=len(stopped),
        went_on=len(went_on),
        factors=tuple(factors),
        headline=_headline(factors[0], source) if factors and factors[0].significant else None,
    )


def _factor(
    kind: str,
    service: str | None,
    pair: tuple[list[Progress], list[Progress]],
    stopped: int,
    went_on: int,
    k: int,
    tested: int,
) -> Factor:
    stopped_with, went_on_with = len(pair[0]), len(pair[1])
    rate_with = stopped_with / (stopped_with + went_on_with)
    without = (stopped - stopped_with) + (went_on - went_on_with)
    rate_without = (stopped - stopped_with) / without if without else 0.0
    ratio = rate_with / rate_without if rate_without else math.inf
    p_value = fisher_greater(stopped_with, stopped, went_on_with, went_on)
    return Factor(
        kind=kind,
        service=service,
        stopped_with=stopped_with,
        stopped=stopped,
        went_on_with=went_on_with,
        went_on=went_on,
        ratio=ratio,
        p_value=p_value,
        significant=significant(p_value, tested),
        examples=tuple(j.reached[k].trace_id for j in pair[0][:EXAMPLES]),
    )


def _headline(factor: Factor, step: StepMatch) -> str:
    met = "a slow step" if factor.kind == "slow" else f"a {factor.service} error"
    times = (
        "where no other journey did"
        if math.isinf(factor.ratio)
        else f"{factor.ratio:.1f}× as often"
    )
    journeys = factor.stopped_with + factor.went_on_with
    return (
        f"journeys that met {met} at {step.operation} stopped {times}"
        f" ({journeys} journeys in the window)"
    )
