"""The journey map and funnels of a window, as the API, UI and CLI show them.

Reads the store's journey steps (never spans) and hands them to the pure analysis
(``analysis.funnel``, ``analysis.leaving``); answers are JSON-ready dicts of counts
and durations. No session or user id is ever part of an answer: example journeys
are named by a trace id of theirs, which viewers may open under the usual masking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.attribute_signal import PER_PERSON_KEYS
from threadline.server.analysis.funnel import Progress, figures, progress
from threadline.server.analysis.leaving import (
    MIN_SUPPORT,
    AttributeSample,
    DropOff,
    describe,
    drop_offs,
    sides,
)
from threadline.server.funnel_defs import Funnel
from threadline.server.journey_model import JourneyTrace, Step, Transition
from threadline.server.storage.base import Store

# Journeys entering a funnel whose traces "what makes users leave" reads at most.
# The counts are exact whatever the window holds (``Store.funnel_reach``); the
# factors need the journeys' traces read and walked in Python, which costs by the
# trace: 2,000 journeys (a few thousand traces) keep that part to tens of
# milliseconds however busy the window. It is also enough to find a real cause: a
# factor met by 10% of the journeys at a step, with which they stop twice as often
# (60% against 30%), is significant (one-sided Fisher) once 500 journeys reach the
# step, a quarter of the sample, even held to the strictest bar of 50 factors tested
# (0.01 / 50, where ``attribute_signal.discoveries`` holds the smallest p-value).
LEAVING_SAMPLE: Final = 2_000

# Journeys of each side of a drop-off whose attributes are read: the spans of at most
# twice this many traces per drop-off, enough for Fisher's test to find a value on
# a few percent of them.
ATTRIBUTE_SAMPLE: Final = 500


def journey_map(
    store: Store,
    window: TimeWindow,
    service: str | None,
    attribute: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Steps (traces, journeys, errors, p50/p95, ended here) and transitions."""
    steps, transitions = store.journey_map(window, service=service, attribute=attribute)
    return {
        "window": {"start_ns": window.start_ns, "end_ns": window.end_ns},
        "service": service,
        "attribute": _attribute(attribute),
        "steps": [
            {
                **_step(s.step),
                "traces": s.traces,
                "journeys": s.journeys,
                "errors": s.errors,
                "error_rate": s.errors / s.traces if s.traces else 0.0,
                "p50_ns": s.p50_ns,
                "p95_ns": s.p95_ns,
                "ended": s.ended,
            }
            for s in steps
        ],
        "transitions": [_transition(t) for t in transitions],
    }


def _attribute(attribute: tuple[str, str] | None) -> dict[str, str] | None:
    return None if attribute is None else {"key": attribute[0], "value": attribute[1]}


def _step(step: Step) -> dict[str, str]:
    return {"id": step.label, "service": step.service, "operation": step.operation}


def _transition(t: Transition) -> dict[str, Any]:
    buckets = dict(t.think)
    return {
        "source": t.source.label,
        "target": t.target.label,
        "count": t.count,
        "journeys": t.journeys,
        "think_p50_ns": sketch.quantile(buckets, 0.5),
        "think_p90_ns": sketch.quantile(buckets, 0.9),
    }


def funnel(
    store: Store,
    definition: Funnel,
    window: TimeWindow,
    service: str | None,
    attribute: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Journeys reaching each step, conversion, time between, and why journeys left.

    The figures of the steps and the stopped/went-on counts are the store's exact
    count (``funnel_reach``); what makes users leave is found on the traces of at
    most ``LEAVING_SAMPLE`` of the journeys entering the funnel (all of them when
    fewer enter), read by session and walked in Python.
    """
    steps = definition.steps
    reach = store.funnel_reach(
        window, steps, service=service, attribute=attribute, sample=LEAVING_SAMPLE
    )
    entered = reach.journeys[0] if reach.journeys else 0
    traces: list[JourneyTrace] = []
    capped = False
    if len(reach.sample) < entered:
        # The sampled journeys were chosen by the count: read by session, unfiltered.
        traces, capped = store.step_traces(window, funnel=steps, sessions=reach.sample)
    elif reach.sample:
        # Every entering journey sampled: read them as the funnel's entry chooses them.
        traces, capped = store.step_traces(
            window, service=service, funnel=steps, attribute=attribute
        )
    journeys = progress(traces, steps, window)
    # Sentences name the sample only when it is one: otherwise they read as before.
    sample = len(journeys) if len(journeys) < entered else None
    attributes = _attribute_samples(store, journeys, len(steps) - 1)
    found = drop_offs(journeys, steps, attributes, sample)
    return {
        "name": definition.name,
        "window": {"start_ns": window.start_ns, "end_ns": window.end_ns},
        "service": service,
        "attribute": _attribute(attribute),
        "partial": capped,
        "steps": [
            {
                "step": s.match.label,
                "journeys": s.journeys,
                "conversion": s.conversion,
                "overall": s.overall,
                "median_ns": s.median_ns,
                "p90_ns": s.p90_ns,
            }
            for s in figures(steps, reach.journeys, [dict(g) for g in reach.gaps])
        ],
        "sampled": {"journeys": len(journeys), "of": entered},
        "drop_offs": [
            _drop_off(d, reach.journeys[k], reach.journeys[k + 1], sample)
            for k, d in enumerate(found)
        ],
    }


def _attribute_samples(
    store: Store, journeys: Sequence[Progress], drop_offs: int
) -> list[AttributeSample]:
    """Attribute values on the trace that reached step k, for each drop-off k, over
    at most ``ATTRIBUTE_SAMPLE`` journeys of each side (the first by trace id:
    random ids, the same ones on every call); one read for all drop-offs. A drop-off
    with fewer stopped journeys than a factor needs reads nothing."""
    picked: list[tuple[list[JourneyTrace], list[JourneyTrace]]] = []
    for k in range(drop_offs):
        stopped, went_on = sides(journeys, k)
        if len(stopped) < MIN_SUPPORT:
            stopped = []
        first, then = (
            sorted((j.reached[k] for j in side), key=lambda t: t.trace_id)[:ATTRIBUTE_SAMPLE]
            for side in (stopped, went_on)
        )
        picked.append((first, then))
    read = [t for pair in picked if pair[0] for side in pair for t in side]
    if not read:
        return [AttributeSample(0, 0, ()) for _ in picked]
    values = store.journey_attributes(
        [([t.trace_id for t in a], [t.trace_id for t in b]) for a, b in picked],
        min(t.start_ns for t in read),
        max(t.end_ns for t in read),
        skip_keys=sorted(PER_PERSON_KEYS),
        min_support=MIN_SUPPORT,
    )
    return [
        AttributeSample(len(a), len(b), tuple(found)) if a else AttributeSample(0, 0, ())
        for (a, b), found in zip(picked, values, strict=True)
    ]


def _drop_off(d: DropOff, reached: int, went_on: int, sample: int | None) -> dict[str, Any]:
    """A drop-off with the exact counts of the journeys that reached its step
    (``reached``) and went on; its factors from the journeys of the sample."""
    return {
        "source": d.source.label,
        "target": d.target.label,
        "stopped": reached - went_on,
        "went_on": went_on,
        "headline": d.headline,
        "factors": [
            {
                "text": describe(f, d.source, sample),
                "kind": f.kind,
                "service": f.service,
                "key": f.key,
                "value": f.value,
                "stopped_with": f.stopped_with,
                "went_on_with": f.went_on_with,
                "ratio": None if math.isinf(f.ratio) else f.ratio,
                "p_value": f.p_value,
                "significant": f.significant,
                "example_traces": list(f.examples),
            }
            for f in d.factors
        ],
    }
