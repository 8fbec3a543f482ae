"""QueryService: the one read service the API, UI, CLI and alerts call.

It asks the store, runs the pure analysis over what comes back and returns
values; the layers above only translate those values (to JSON, HTML or
terminal output). Requests for things that do not exist raise ``NotFound``;
identifiers that cannot be valid raise ``BadRequest`` before the store is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.tree import SpanTree, build_tree, summarize
from threadline.server.errors import BadRequest, NotFound
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import JourneyOrder, Store

# Most traces one journey view lists. A journey is one person's session: a few
# hundred page views is already unusual, and the view must stay bounded for a bot.
MAX_JOURNEY_TRACES: Final = 500
# Session and user ids are opaque strings chosen by the instrumented service; any
# real one is far shorter. Longer input is refused instead of sent to the store.
MAX_KEY_CHARS: Final = 512

_TRACE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class TraceView:
    """One trace: its summary and its span tree."""

    summary: TraceSummary
    tree: SpanTree


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One trace of a journey and the think time before it.

    ``gap_ns`` is the time between the end of everything earlier in the journey
    and the start of this trace (0 when they overlap); ``None`` for the first step.
    """

    trace: TraceSummary
    gap_ns: int | None


@dataclass(frozen=True, slots=True)
class JourneyView:
    """What one session (or one user) went through, oldest trace first."""

    session_id: str | None
    user_id: str | None
    steps: tuple[JourneyStep, ...]


class QueryService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def stats(self) -> StoreCounts:
        return self._store.counts()

    def services(self) -> list[ServiceOperations]:
        return self._store.services()

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Traces matching every filter of ``query``, newest first."""
        return self._store.search_traces(query)

    def trace(self, trace_id: str) -> TraceView:
        """The trace with ``trace_id`` (32 hex characters, any case)."""
        normalized = normalize_trace_id(trace_id)
        spans = self._store.get_trace(normalized)
        if not spans:
            raise NotFound(f"no trace with trace_id {normalized!r}")
        tree = build_tree(spans)
        return TraceView(summary=summarize(tree), tree=tree)

    def journeys(self, *, order: JourneyOrder = "recent", limit: int = 20) -> list[JourneySummary]:
        return self._store.list_journeys(order=order, limit=limit)

    def session_journey(self, session_id: str) -> JourneyView:
        """Every trace of the session, oldest first, with the think time between them."""
        _check_key("session_id", session_id)
        traces = self._store.journey_traces(session_id=session_id, limit=MAX_JOURNEY_TRACES)
        if not traces:
            raise NotFound(f"no journey with session_id {_shown(session_id)}")
        user_id = next((t.user_id for t in traces if t.user_id), None)
        return JourneyView(session_id=session_id, user_id=user_id, steps=journey_steps(traces))

    def user_journey(self, user_id: str) -> JourneyView:
        """Every trace of the user across sessions, oldest first."""
        _check_key("user_id", user_id)
        traces = self._store.journey_traces(user_id=user_id, limit=MAX_JOURNEY_TRACES)
        if not traces:
            raise NotFound(f"no journey with user_id {_shown(user_id)}")
        return JourneyView(session_id=None, user_id=user_id, steps=journey_steps(traces))


def normalize_trace_id(trace_id: str) -> str:
    """The lowercase form of a W3C trace id; ``BadRequest`` if it is not 32 hex chars."""
    lowered = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(lowered):
        raise BadRequest(
            f"trace_id {_shown(trace_id)} is not valid: expected 32 hexadecimal characters"
        )
    return lowered


def journey_steps(traces: list[TraceSummary]) -> tuple[JourneyStep, ...]:
    """``traces`` (oldest first) with the gap since everything before each ended."""
    steps: list[JourneyStep] = []
    latest_end: int | None = None
    for trace in traces:
        gap = None if latest_end is None else max(0, trace.start_ns - latest_end)
        steps.append(JourneyStep(trace=trace, gap_ns=gap))
        end = trace.start_ns + trace.duration_ns
        latest_end = end if latest_end is None else max(latest_end, end)
    return tuple(steps)


def _check_key(name: str, value: str) -> None:
    if not value:
        raise BadRequest(f"{name} must not be empty")
    if len(value) > MAX_KEY_CHARS:
        raise BadRequest(f"{name} is longer than {MAX_KEY_CHARS} characters")


def _shown(value: str) -> str:
    # Error messages quote what was sent, but never more than a line of it.
    return repr(value if len(value) <= 80 else value[:80] + "…")
