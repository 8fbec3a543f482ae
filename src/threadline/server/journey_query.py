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
from threadline.server.analysis.funnel import Progress, progress, summarize
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
    """Journeys reaching each step, conversion, time between, and why journeys left."""
    # Only journeys entering the funnel are read: the others would be skipped anyway.
    traces, capped = store.step_traces(
        window, service=service, first=definition.steps[0], attribute=attribute
    )
    journeys = progress(traces, definition.steps, window)
    attributes = _attribute_samples(store, journeys, len(definition.steps) - 1)
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
            for s in summarize(journeys, definition.steps)
        ],
        "drop_offs": [_drop_off(d) for d in drop_offs(journeys, definition.steps, attributes)],
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


def _drop_off(d: DropOff) -> dict[str, Any]:
    return {
        "source": d.source.label,
        "target": d.target.label,
        "stopped": d.stopped,
        "went_on": d.went_on,
        "headline": d.headline,
        "factors": [
            {
                "text": describe(f, d.source),
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
