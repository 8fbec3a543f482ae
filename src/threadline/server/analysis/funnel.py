"""Funnels over journeys: who reached each step, conversion, time between steps.

Pure: takes the traces of a window's journeys (``JourneyTrace``, by session then
start) and a funnel's ordered steps. A journey *enters* when it takes the first step
inside the window; it *reaches* step k when, after reaching step k−1, any later
trace of the same session is step k (other steps may come between, and the step
may be a later trace: a funnel follows the session, not one request). The time to
a step runs from the start of the trace that reached the step before to the start
of the one that reached it, kept as a ``sketch`` histogram (within 2%).

The stores count the same walk in SQL (``Store.funnel_reach``) so a funnel's
figures never need every journey's traces; ``figures`` turns either count into the
steps' conversion and times, and ``progress`` still walks the sampled journeys
that "what makes users leave" compares (``leaving``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.journey_model import JourneyTrace, Step


@dataclass(frozen=True, slots=True)
class StepMatch:
    """A funnel step: an operation, in one service or (``service`` None) any."""

    operation: str
    service: str | None = None

    def matches(self, step: Step) -> bool:
        return step.operation == self.operation and self.service in (None, step.service)

    @property
    def label(self) -> str:
        return self.operation if self.service is None else f"{self.service} {self.operation}"


@dataclass(frozen=True, slots=True)
class Progress:
    """One journey through a funnel: the traces that reached each step, in order,
    and every trace of the journey (to find what happened between steps)."""

    reached: tuple[JourneyTrace, ...]
    traces: tuple[JourneyTrace, ...]


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """A step's figures: journeys reaching it, conversion from the one before and
    from the first, and the median and p90 time from the step before (ns)."""

    match: StepMatch
    journeys: int
    conversion: float | None
    overall: float | None
    median_ns: float | None
    p90_ns: float | None


def progress(
    traces: Sequence[JourneyTrace], steps: Sequence[StepMatch], window: TimeWindow
) -> list[Progress]:
    """Each journey that entered the funnel in ``window``, and how far it went."""
    found: list[Progress] = []
    for _, group in groupby(traces, key=lambda trace: trace.session_id):
        journey = tuple(group)
        reached: list[JourneyTrace] = []
        for trace in journey:
            if len(reached) == len(steps):
                break
            if not steps[len(reached)].matches(trace.step):
                continue
            if not reached and not window.start_ns <= trace.start_ns < window.end_ns:
                continue
            reached.append(trace)
        if reached:
            found.append(Progress(tuple(reached), journey))
    return found


def walked(
    traces: Sequence[JourneyTrace], steps: Sequence[StepMatch], window: TimeWindow
) -> list[JourneyTrace]:
    """Of ``traces`` (by session, then start), those ``progress`` and the drop-off
    comparison read: of each journey entering the funnel in ``window``, from the
    trace entering it to the trace completing it (or to its end when it stops
    before), the traces reaching a step and the traces that met an error (``telling``).

    The others change nothing: walked again, these reach the same steps (a trace
    left out reached none, so none before a reached one could take its place), and
    the comparison reads only the traces reaching steps and the errors met between
    them. Most of a journey's traces are of neither kind, and no store sends them."""
    kept: list[JourneyTrace] = []
    for journey in progress(traces, steps, window):
        first = journey.traces.index(journey.reached[0])
        completed = len(journey.reached) == len(steps)
        end = journey.traces.index(journey.reached[-1]) + 1 if completed else None
        reached = {id(t) for t in journey.reached}
        kept.extend(t for t in journey.traces[first:end] if id(t) in reached or telling(t))
    return kept


def telling(trace: JourneyTrace) -> bool:
    """Whether a trace between funnel steps holds something a journey can have met
    before a drop-off (``leaving``): it failed, or has an error span in some service."""
    return trace.failed or bool(trace.error_services) or trace.error_origin is not None


def summarize(journeys: Sequence[Progress], steps: Sequence[StepMatch]) -> list[FunnelStep]:
    """Journeys reaching each step, conversion and time between steps."""
    counts = [sum(1 for j in journeys if len(j.reached) > k) for k in range(len(steps))]
    gaps: list[dict[int, int]] = [{} for _ in steps]
    for k in range(1, len(steps)):
        for journey in journeys:
            if len(journey.reached) > k:
                gap = journey.reached[k].start_ns - journey.reached[k - 1].start_ns
                index = sketch.bucket_index(gap)
                gaps[k][index] = gaps[k].get(index, 0) + 1
    return figures(steps, counts, gaps)


def figures(
    steps: Sequence[StepMatch], counts: Sequence[int], gaps: Sequence[Mapping[int, int]]
) -> list[FunnelStep]:
    """A funnel's steps from journeys reaching each (``counts``) and the ``sketch``
    histograms of the time from the step before (``gaps``, empty for the first):
    what ``summarize`` finds walking journeys, or a store counts (``FunnelReach``)."""
    result: list[FunnelStep] = []
    for k, match in enumerate(steps):
        buckets = gaps[k]
        result.append(
            FunnelStep(
                match=match,
                journeys=counts[k],
                conversion=_share(counts[k], counts[k - 1]) if k > 0 else None,
                overall=_share(counts[k], counts[0]) if k > 0 else None,
                median_ns=sketch.quantile(buckets, 0.5) if buckets else None,
                p90_ns=sketch.quantile(buckets, 0.9) if buckets else None,
            )
        )
    return result


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
