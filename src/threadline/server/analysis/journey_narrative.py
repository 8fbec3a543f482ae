"""What one user went through: their traces told as steps, in time order.

Each trace of a session (or of a user) is one *step*: the request the user made
(the root span's operation), when and for how long, whether it failed and where
(``error_origin``), which services it touched, and which service held most of its
critical path. Between steps is *think time*: from the end of everything the user
had done before to the start of the step (0 when steps overlap, as parallel
requests from one page do); a step that starts while an earlier one is running
adds no think time.

For the journey as a whole: its total time (first start to last end), the failed
steps, where the user stopped (the last step to start, and whether it failed — a
journey that ends on a failure is the one to look at), and which service consumed
most of the critical-path time summed over all its traces.

Every trace goes through the same fix-ups as a single trace view
(``assembly.fix_up``), so the numbers agree with what the trace view shows.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.critical_path import PathShare, ShareKind, critical_path
from threadline.server.analysis.error_origin import ErrorOrigin, find_error_origin
from threadline.server.analysis.tree import summarize
from threadline.server.model import SpanRecord


@dataclass(frozen=True, slots=True)
class NarrativeStep:
    """One trace of a journey, as a step the user took.

    ``think_time_ns`` is ``None`` for the first step. ``top_service`` is the
    service with the most time on the trace's critical path. ``error`` is where
    the step's failure started, when it failed.
    """

    trace_id: str
    entry_service: str
    entry_operation: str
    start_ns: int
    duration_ns: int
    failed: bool
    error: ErrorOrigin | None
    services: tuple[str, ...]
    top_service: str | None
    critical_path_ns: int
    think_time_ns: int | None

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


@dataclass(frozen=True, slots=True)
class JourneyNarrative:
    """A journey's steps, oldest first, and what they add up to.

    ``service_shares`` are the services' (and queues') critical-path time summed
    over every step, largest first, as fractions of the steps' critical paths.
    """

    session_id: str | None
    user_id: str | None
    steps: tuple[NarrativeStep, ...]
    service_shares: tuple[PathShare, ...]

    @property
    def start_ns(self) -> int:
        return min((step.start_ns for step in self.steps), default=0)

    @property
    def end_ns(self) -> int:
        return max((step.end_ns for step in self.steps), default=0)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def think_time_ns(self) -> int:
        return sum(step.think_time_ns or 0 for step in self.steps)

    @property
    def failed_steps(self) -> tuple[NarrativeStep, ...]:
        return tuple(step for step in self.steps if step.failed)

    @property
    def stopped_at(self) -> NarrativeStep | None:
        """The last step the user took."""
        return self.steps[-1] if self.steps else None

    @property
    def stopped_after_failure(self) -> bool:
        return self.stopped_at is not None and self.stopped_at.failed

    @property
    def top_service(self) -> str | None:
        """The service that consumed most of the journey's critical-path time."""
        return next((share.name for share in self.service_shares if share.kind == "service"), None)


def narrate_journey(traces: Iterable[Sequence[SpanRecord]]) -> JourneyNarrative:
    """The narrative of one journey, given the spans of each of its traces.

    Each item of ``traces`` holds the spans of one trace; empty ones are skipped.
    """
    steps: list[NarrativeStep] = []
    shares: dict[tuple[str, ShareKind], int] = defaultdict(int)
    path_total = 0
    session_id: str | None = None
    user_id: str | None = None
    for spans in traces:
        if not spans:
            continue
        tree = fix_up(spans).tree
        summary = summarize(tree)
        path = critical_path(tree)
        errors = find_error_origin(tree)
        for share in path.shares:
            shares[(share.name, share.kind)] += share.duration_ns
        path_total += path.duration_ns
        session_id = session_id or summary.session_id
        user_id = user_id or summary.user_id
        steps.append(
            NarrativeStep(
                trace_id=summary.trace_id,
                entry_service=summary.root_service,
                entry_operation=summary.root_operation,
                start_ns=summary.start_ns,
                duration_ns=summary.duration_ns,
                failed=errors.trace_failed,
                error=errors.origin,
                services=summary.services,
                top_service=path.top_service,
                critical_path_ns=path.duration_ns,
                think_time_ns=None,
            )
        )
    steps.sort(key=lambda step: (step.start_ns, step.trace_id))
    return JourneyNarrative(
        session_id=session_id,
        user_id=user_id,
        steps=_with_think_time(steps),
        service_shares=tuple(
            PathShare(name, kind, ns, ns / path_total if path_total else 0.0)
            for (name, kind), ns in sorted(shares.items(), key=lambda item: (-item[1], item[0]))
        ),
    )


def think_times(steps: Iterable[tuple[int, int]]) -> list[int | None]:
    """The think time before each ``(start_ns, end_ns)`` step, oldest first.

    The gap since everything before the step ended (0 when they overlap); ``None``
    for the first step.
    """
    gaps: list[int | None] = []
    latest_end: int | None = None
    for start_ns, end_ns in steps:
        gaps.append(None if latest_end is None else max(0, start_ns - latest_end))
        latest_end = end_ns if latest_end is None else max(latest_end, end_ns)
    return gaps


def _with_think_time(steps: list[NarrativeStep]) -> tuple[NarrativeStep, ...]:
    """``steps`` (oldest first) with their think time."""
    gaps = think_times((step.start_ns, step.end_ns) for step in steps)
    return tuple(
        dataclasses.replace(step, think_time_ns=gap) for step, gap in zip(steps, gaps, strict=True)
    )
