"""Funnel progress and the drop-off comparison, on hand-made journeys."""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch, progress, summarize
from threadline.server.analysis.leaving import drop_offs
from threadline.server.journey_model import JourneyTrace, Step

S: Final = 1_000_000_000
WINDOW: Final = TimeWindow(100 * S, 200 * S)
FUNNEL: Final = (StepMatch("A"), StepMatch("B", "web"), StepMatch("C"))


def trace(
    session: str, n: int, operation: str, at_s: int, *, errors: tuple[str, ...] = ()
) -> JourneyTrace:
    return JourneyTrace(
        session_id=session,
        trace_id=f"{session}-{n}",
        start_ns=at_s * S,
        end_ns=at_s * S + S,
        step=Step("web", operation),
        failed=bool(errors),
        error_services=errors,
    )


def test_a_step_may_be_reached_in_a_later_trace_with_others_between() -> None:
    """A → X → B → C counts all three steps; B in another service does not match."""
    journeys = progress(
        [
            trace("s1", 1, "A", 110),
            trace("s1", 2, "X", 120),
            trace("s1", 3, "B", 130),
            trace("s1", 4, "C", 190),
            trace("s2", 1, "A", 110),
            JourneyTrace("s2", "s2-2", 120 * S, 121 * S, Step("api", "B"), False, ()),
        ],
        FUNNEL,
        WINDOW,
    )
    steps = summarize(journeys, FUNNEL)
    assert [s.journeys for s in steps] == [2, 1, 1]
    assert steps[1].conversion == 0.5
    assert steps[2].median_ns is not None
    assert abs(steps[2].median_ns - 60 * S) < 0.02 * 60 * S


def test_a_journey_enters_only_by_a_first_step_inside_the_window() -> None:
    """A first step before the window does not enter the funnel."""
    journeys = progress([trace("s1", 1, "A", 50), trace("s1", 2, "B", 110)], FUNNEL, WINDOW)
    assert journeys == []


def test_the_error_met_before_leaving_is_ranked_first() -> None:
    """Journeys meeting a payments error at B stop far more often than the others."""
    traces: list[JourneyTrace] = []
    for i in range(60):
        session = f"s{i:02d}"
        failing = i < 20
        traces += [
            trace(session, 1, "A", 110),
            trace(session, 2, "B", 120, errors=("payments",) if failing else ()),
        ]
        if (failing and i >= 16) or (not failing and i < 50):
            traces.append(trace(session, 3, "C", 130))
    (first, second) = drop_offs(progress(traces, FUNNEL, WINDOW), FUNNEL)
    assert first.stopped == 0
    assert (second.stopped, second.went_on) == (26, 34)
    top = second.factors[0]
    assert (top.kind, top.service, top.significant) == ("error", "payments", True)
    assert second.headline is not None
    assert second.headline.startswith("journeys that met a payments error at B stopped")
