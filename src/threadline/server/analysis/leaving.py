"""What makes users leave: journeys that stopped at a funnel step against those that went on.

Pure. For the drop-off after step k, every journey that reached step k is in one of
two groups: *stopped* (never reached step k+1) or *went on*. What each journey met
"just before" is read from its traces from the one that reached step k up to the
one that reached step k+1 (for those that stopped, to the end of the journey):

- an error in a service (a failed span of that service in one of those traces);
- a slow step: the trace that reached step k took longer than the step's p90 over
  every journey that reached it;
- an attribute value (``key=value`` on a span of the trace that reached step k:
  a user tier, a plan, a region), counted over samples of each side
  (``AttributeSample``). Identifier keys and per-person keys (user and session ids)
  are never factors, by ``attribute_signal``'s rules.

Errors pass up the call chain: a payments error fails the orders and gateway spans
that called it, so the three services' errors are met by the same journeys, and so
are the values that come with them (``http.status_code=502``). Between factors that
tie, an error comes before a slow step and an attribute value, and among errors the
service they started in (``JourneyTrace.error_origin``) on more of the stopped
journeys comes first: the cause before the messengers.

A factor is ranked by the one-sided Fisher test ``attribute_signal`` uses for "what slow
requests have in common" (stopped journeys as the focus, the ones that went on as the
baseline), held to the same false discovery rate over the factors tested
(``attribute_signal.discoveries``) and the same minimum support (attribute values, like
theirs, also need ``attribute_signal.MIN_FOCUS_SHARE`` of the stopped sample and to be
more common among stopped journeys than among the others). The ratio is how many times
as often journeys meeting the factor stopped as journeys that did not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from threadline.server.analysis.attribute_signal import (
    PER_PERSON_KEYS,
    discoveries,
    fisher_greater,
    noise_reason,
    supported,
)
from threadline.server.analysis.funnel import Progress, StepMatch
from threadline.server.journey_model import JourneyAttribute, JourneyTrace

# Stopped journeys a factor must be met on to be listed (as for attribute values).
MIN_SUPPORT: Final = 3
# Example traces per factor.
EXAMPLES: Final = 3
# Factors that tie are listed errors first: they name a service to look at.
_KIND_ORDER: Final = {"error": 0, "slow": 1, "attribute": 2}


@dataclass(frozen=True, slots=True)
class Factor:
    """Something met just before a drop-off, and how it goes with stopping."""

    kind: str  # "error" (in ``service``), "slow" or "attribute" (``key``=``value``)
    service: str | None
    stopped_with: int
    stopped: int
    went_on_with: int
    went_on: int
    ratio: float
    p_value: float
    significant: bool
    examples: tuple[str, ...]
    key: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class AttributeSample:
    """Attribute values read for one drop-off: ``stopped`` and ``went_on`` are the
    journeys of each side whose trace at the step was read (a sample when many)."""

    stopped: int
    went_on: int
    values: tuple[JourneyAttribute, ...]


@dataclass(frozen=True, slots=True)
class DropOff:
    """Journeys lost between ``source`` and ``target``, and the factors found."""

    source: StepMatch
    target: StepMatch
    stopped: int
    went_on: int
    factors: tuple[Factor, ...]
    headline: str | None


def drop_offs(
    journeys: Sequence[Progress],
    steps: Sequence[StepMatch],
    attributes: Sequence[AttributeSample] = (),
    sample: int | None = None,
) -> list[DropOff]:
    """One comparison per pair of consecutive funnel steps; ``attributes[k]``, when
    given, holds the attribute values read for the drop-off after step k. ``sample``
    says ``journeys`` are a sample of that many of the window's (the sentences say so)."""
    return [
        _drop_off(journeys, steps, k, attributes[k] if k < len(attributes) else None, sample)
        for k in range(len(steps) - 1)
    ]


def sides(journeys: Sequence[Progress], k: int) -> tuple[list[Progress], list[Progress]]:
    """Journeys that reached step k and stopped there, and those that went on."""
    at_step = [j for j in journeys if len(j.reached) > k]
    return [j for j in at_step if len(j.reached) == k + 1], [
        j for j in at_step if len(j.reached) > k + 1
    ]


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


def _drop_off(
    journeys: Sequence[Progress],
    steps: Sequence[StepMatch],
    k: int,
    attributes: AttributeSample | None,
    sample: int | None,
) -> DropOff:
    stopped, went_on = sides(journeys, k)
    at_step = [*stopped, *went_on]
    met: dict[tuple[str, str | None], tuple[list[Progress], list[Progress]]] = {}
    started_in: dict[str, int] = {}  # stopped journeys whose error started in a service
    slow_over = _p90([j.reached[k].duration_ns for j in at_step]) if at_step else 0.0
    for group, journeys_in in ((0, stopped), (1, went_on)):
        for journey in journeys_in:
            context = _before(journey, k)
            keys: set[tuple[str, str | None]] = {
                ("error", service) for trace in context for service in trace.error_services
            }
            if journey.reached[k].duration_ns > slow_over:
                keys.add(("slow", None))
            if group == 0:
                for origin in {t.error_origin for t in context if t.error_origin}:
                    started_in[origin] = started_in.get(origin, 0) + 1
            for key in keys:
                met.setdefault(key, ([], []))[group].append(journey)
    values = _candidates(attributes) if attributes is not None else []
    factors = [
        _factor(kind, service, pair, len(stopped), len(went_on), k)
        for (kind, service), pair in met.items()
        if supported(len(pair[0]), len(stopped), MIN_SUPPORT)
    ]
    if attributes is not None:
        factors += [_attribute_factor(a, attributes) for a in values]
    # Every factor met counts as tested, those without the support for a p-value too.
    found = discoveries([f.p_value for f in factors], tested=len(met) + len(values))
    factors = [replace(f, significant=flag) for f, flag in zip(factors, found, strict=True)]
    factors.sort(
        key=lambda f: (
            not f.significant,
            f.p_value,
            -f.ratio,
            _KIND_ORDER.get(f.kind, len(_KIND_ORDER)),
            -started_in.get(f.service or "", 0) if f.kind == "error" else 0,
            f.kind,
            f.service or "",
            f.key or "",
            f.value or "",
        )
    )
    source, target = steps[k], steps[k + 1]
    return DropOff(
        source=source,
        target=target,
        stopped=len(stopped),
        went_on=len(went_on),
        factors=tuple(factors),
        headline=(
            describe(factors[0], source, sample) if factors and factors[0].significant else None
        ),
    )


def _factor(
    kind: str,
    service: str | None,
    pair: tuple[list[Progress], list[Progress]],
    stopped: int,
    went_on: int,
    k: int,
) -> Factor:
    """The factor met by ``pair`` (stopped, went on); significance is marked over all
    the drop-off's factors (``_drop_off``)."""
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
        significant=False,
        examples=tuple(j.reached[k].trace_id for j in pair[0][:EXAMPLES]),
    )


def _candidates(sample: AttributeSample) -> list[JourneyAttribute]:
    """Values that may be factors: no identifier or per-person key, enough stopped
    journeys (in number and share), and more common among them than the others."""
    return [
        a
        for a in sample.values
        if a.key not in PER_PERSON_KEYS
        and noise_reason(a.key, a.key_values, a.key_traces) is None
        and supported(a.stopped, sample.stopped, MIN_SUPPORT)
        and a.stopped * max(sample.went_on, 1) > a.went_on * sample.stopped
    ]


def _attribute_factor(a: JourneyAttribute, sample: AttributeSample) -> Factor:
    """The factor of one attribute value; significance is marked over all the drop-off's
    factors (``_drop_off``)."""
    stopped_with = min(a.stopped, sample.stopped)
    went_on_with = min(a.went_on, sample.went_on)
    without_stopped = sample.stopped - stopped_with
    without = without_stopped + sample.went_on - went_on_with
    rate_with = stopped_with / (stopped_with + went_on_with)
    rate_without = without_stopped / without if without else 0.0
    p_value = fisher_greater(stopped_with, sample.stopped, went_on_with, sample.went_on)
    return Factor(
        kind="attribute",
        service=None,
        stopped_with=stopped_with,
        stopped=sample.stopped,
        went_on_with=went_on_with,
        went_on=sample.went_on,
        ratio=rate_with / rate_without if rate_without else math.inf,
        p_value=p_value,
        significant=False,
        examples=a.examples[:EXAMPLES],
        key=a.key,
        value=a.value,
    )


def describe(factor: Factor, step: StepMatch, sample: int | None = None) -> str:
    """The sentence a user reads for one factor of the drop-off after ``step``; with
    ``sample``, the factor was found among that many journeys sampled from the window."""
    if factor.kind == "attribute":
        return _phrase(f"journeys with {factor.key}={factor.value}", factor, step, sample)
    met = "a slow step" if factor.kind == "slow" else f"a {factor.service} error"
    return _phrase(f"journeys that met {met}", factor, step, sample)


def _phrase(who: str, factor: Factor, step: StepMatch, sample: int | None) -> str:
    times = (
        "where no other journey did"
        if math.isinf(factor.ratio)
        else f"{factor.ratio:.1f}× as often"
    )
    journeys = factor.stopped_with + factor.went_on_with
    where = "journeys in the window" if sample is None else f"of {sample:,} sampled journeys"
    return f"{who} at {step.operation} stopped {times} ({journeys} {where})"
