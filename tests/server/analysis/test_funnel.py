"""Funnel progress and the drop-off comparison, on hand-made journeys."""

from __future__ import annotations

import dataclasses
from typing import Final

import pytest

from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch, progress, summarize
from threadline.server.analysis.leaving import AttributeSample, drop_offs
from threadline.server.journey_model import JourneyAttribute, JourneyTrace, Step

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


def test_between_tied_errors_the_service_they_started_in_comes_first() -> None:
    """A payments error fails the gateway and orders spans above it: the three
    services' errors are met by the same journeys (as is the status code the gateway
    answered with), and payments, where the error started, is named; without a known
    origin the errors stay in alphabetical order, still before the status code."""
    for origin, named in (("payments", "payments"), (None, "gateway")):
        traces: list[JourneyTrace] = []
        for i in range(60):
            session = f"s{i:02d}"
            failing = i < 20
            errors = ("gateway", "orders", "payments") if failing else ()
            at_b = trace(session, 2, "B", 120, errors=errors)
            if failing:
                at_b = dataclasses.replace(at_b, error_origin=origin)
            traces += [trace(session, 1, "A", 110), at_b]
            if (failing and i >= 16) or (not failing and i < 50):
                traces.append(trace(session, 3, "C", 130))
        failed_at_b = sorted(f"s{i:02d}-2" for i in range(20))
        status = JourneyAttribute("http.status_code", "502", 16, 4, 1, 20, tuple(failed_at_b[:3]))
        samples = [AttributeSample(0, 0, ()), AttributeSample(26, 34, (status,))]
        (_, second) = drop_offs(progress(traces, FUNNEL, WINDOW), FUNNEL, samples)
        tied = [f for f in second.factors if f.kind == "error" or f.key == "http.status_code"]
        assert len(tied) == 4
        assert len({(f.stopped_with, f.went_on_with, f.ratio) for f in tied}) == 1
        assert second.factors[0].service == named
        assert second.headline is not None
        assert f"met a {named} error at B" in second.headline


def test_attribute_values_follow_the_slow_request_rules() -> None:
    """A plan on most stopped journeys is a factor; a user id (a per-person key), an
    id unique per journey and a value no more common among the stopped are not."""
    traces: list[JourneyTrace] = []
    for i in range(40):
        session = f"s{i:02d}"
        traces += [trace(session, 1, "A", 110), trace(session, 2, "B", 120)]
        if i >= 15:
            traces.append(trace(session, 3, "C", 130))
    journeys = progress(traces, FUNNEL, WINDOW)
    values = (
        JourneyAttribute("app.plan", "trial", 12, 2, 2, 40, ("s00-2", "s01-2", "s02-2")),
        JourneyAttribute("user.id", "ada", 10, 0, 5, 40, ("s00-2",)),
        JourneyAttribute("order.number", "7", 3, 0, 40, 40, ("s00-2",)),
        JourneyAttribute("region", "eu", 7, 12, 2, 40, ("s00-2",)),
    )
    (_, second) = drop_offs(
        journeys, FUNNEL, [AttributeSample(0, 0, ()), AttributeSample(15, 25, values)]
    )
    assert (second.stopped, second.went_on) == (15, 25)
    [plan] = [f for f in second.factors if f.kind == "attribute"]
    assert (plan.key, plan.value, plan.significant) == ("app.plan", "trial", True)
    assert plan.examples == ("s00-2", "s01-2", "s02-2")
    assert plan.ratio == pytest.approx((12 / 14) / (3 / 26))
    assert second.headline == (
        "journeys with app.plan=trial at B stopped 7.4× as often (14 journeys in the window)"
    )
