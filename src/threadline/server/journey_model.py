"""Values the journey map, funnels and drop-off analysis share (no I/O).

A *step* is a trace's entry operation (its root's service and operation); a
*journey* is a session: its steps in start order. See docs/journeys.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

# A journey ends at a step when its session's next step starts more than this after
# the step ends (or never): the idle timeout web analytics use for a visit.
SESSION_GAP_NS: Final = 30 * 60 * 1_000_000_000

# What a journey step keeps of its entry span's attributes, on every store: at most
# ``STEP_ATTRIBUTES`` scalar values of at most ``STEP_VALUE_CHARS`` characters (a
# step row stays narrow).
STEP_ATTRIBUTES: Final = 32
STEP_VALUE_CHARS: Final = 64


@dataclass(frozen=True, slots=True, order=True)
class Step:
    """An entry operation: ``checkout`` ``POST /checkout``."""

    service: str
    operation: str

    @property
    def label(self) -> str:
        return f"{self.service} {self.operation}"


@dataclass(frozen=True, slots=True)
class StepStats:
    """A step over a window: traces, journeys, errors, latency, journeys that ended here."""

    step: Step
    traces: int
    journeys: int
    errors: int
    p50_ns: float
    p95_ns: float
    ended: int


@dataclass(frozen=True, slots=True)
class Transition:
    """Consecutive steps of journeys: how often, by how many journeys, the think time.

    ``think`` is a ``sketch`` histogram (bucket index, count) of the time from the end
    of the first step's trace to the start of the next (0 when they overlap).
    """

    source: Step
    target: Step
    count: int
    journeys: int
    think: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class JourneyTrace:
    """One trace of a journey, as funnels and the drop-off comparison read it."""

    session_id: str
    trace_id: str
    start_ns: int
    end_ns: int
    step: Step
    failed: bool
    error_services: tuple[str, ...]
    # The service where the trace's error started (``analysis.error_origin``), when
    # known: it tells the cause from the services an error passed through on its way up.
    error_origin: str | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def journey_traces(rows: Iterable[Sequence[Any]]) -> list[JourneyTrace]:
    """Traces from store rows of (session id, trace id, start, end, service, operation,
    failed, error services, error origin), in their order. Positional construction
    and one ``Step`` per distinct step: a funnel's sample is tens of thousands of
    rows, and building them field by field cost more than reading them."""
    steps: dict[tuple[str, str], Step] = {}
    traces = []
    for session, trace, start, end, service, operation, failed, errors, origin in rows:
        step = steps.get((service, operation))
        if step is None:
            step = steps[(service, operation)] = Step(service, operation)
        traces.append(JourneyTrace(session, trace, start, end, step, failed, tuple(errors), origin))
    return traces


@dataclass(frozen=True, slots=True)
class JourneyAttribute:
    """Sampled journeys of each side of a drop-off carrying ``key=value`` on any span
    (span or resource attribute) of the trace that reached the step.

    ``key_values``/``key_traces``: distinct values of the key and traces carrying it
    over both samples, so identifiers can be told from properties. ``examples``: trace
    ids of stopped journeys carrying the value.
    """

    key: str
    value: str
    stopped: int
    went_on: int
    key_values: int
    key_traces: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FunnelReach:
    """A funnel over a window as the store counts it (``Store.funnel_reach``).

    ``journeys[k]``: journeys that reached step k. ``gaps[k]``: a ``sketch`` histogram
    (bucket index, count) of the time from the start of the trace that reached step
    k−1 to the start of the one that reached step k (empty for the first step).
    ``sample``: session ids of at most the asked number of journeys entering the
    funnel, the first by a hash of the session id (the same ones on every call to
    the same store), for what is computed in Python on their traces; never shown.
    """

    journeys: tuple[int, ...]
    gaps: tuple[tuple[tuple[int, int], ...], ...]
    sample: tuple[str, ...]
