"""The ``Store`` contract for ``funnel_reach``: a funnel counted in the store.

Every figure is checked against the walk it replaces, ``analysis.funnel.progress``
over ``step_traces()``, on sessions that test its rules (order by start then
trace id, a step repeated, an entry before or after the window, a later step past
the window's end, a step in any service), before and after a fold; and explicitly.
The last tests compare ``journey_query.funnel`` with the answer of the Python walk
over every journey, on the scripted shoppers.
"""

from __future__ import annotations

import math
from typing import Any, Final

import pytest

from support.journey_script import FUNNEL, shoppers
from support.journey_script import T0 as SHOP_T0
from support.spans import span_record
from threadline.conventions import JOURNEY_SYNTHETIC, SYNTHETIC_TRUE
from threadline.server import journey_query
from threadline.server.aggregates import TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.funnel import StepMatch, progress, summarize
from threadline.server.analysis.leaving import describe, drop_offs
from threadline.server.batch import SpanBatch
from threadline.server.funnel_defs import Funnel
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.base import Store

pytestmark = pytest.mark.store_methods("funnel_reach", "step_traces", "journey_attributes")

S: Final = 1_000_000_000
T0: Final = 1_700_000_040 * S
WAIT_S: Final = 30.0
WINDOW: Final = TimeWindow(T0, T0 + 3600 * S)
CART: Final = StepMatch("GET /cart", "web")
CHECKOUT: Final = StepMatch("POST /checkout")  # in any service
PAY: Final = StepMatch("POST /pay", "web")
STEPS: Final = (CART, CHECKOUT, PAY)


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def trace(
    n: int, session: str, operation: str, at_s: float, service: str = "web", **fields: Any
) -> list[SpanRecord]:
    """A trace of ``service`` ``operation`` at ``at_s`` (from ``T0``) calling payments."""
    start = T0 + int(at_s * S)
    trace_id = f"{n:032x}"
    return [
        span_record(trace_id, "r", None, service, operation, start, start + S,
                    session_id=session, **fields),
        span_record(trace_id, "c", "r", "payments", "charge", start, start + S // 2,
                    kind=SpanKind.SERVER, session_id=session),
    ]  # fmt: skip


def walked(
    store: Store, steps: tuple[StepMatch, ...], **filters: Any
) -> tuple[tuple[int, ...], tuple[tuple[tuple[int, int], ...], ...]]:
    """Journeys per step and gap histograms as the Python walk finds them."""
    traces, capped = store.step_traces(WINDOW, **filters)
    assert not capped
    journeys = progress(traces, steps, WINDOW)
    counts = tuple(sum(1 for j in journeys if len(j.reached) > k) for k in range(len(steps)))
    gaps = []
    for k in range(len(steps)):
        buckets: dict[int, int] = {}
        for j in journeys:
            if k and len(j.reached) > k:
                index = sketch.bucket_index(j.reached[k].start_ns - j.reached[k - 1].start_ns)
                buckets[index] = buckets.get(index, 0) + 1
        gaps.append(tuple(sorted(buckets.items())))
    return counts, tuple(gaps)


def counted(
    store: Store, steps: tuple[StepMatch, ...], **filters: Any
) -> tuple[tuple[int, ...], tuple[tuple[tuple[int, int], ...], ...]]:
    reach = store.funnel_reach(WINDOW, steps, **filters)
    return reach.journeys, reach.gaps


def test_the_store_counts_a_funnel_as_the_walk_does(store: Store) -> None:
    """Journeys per step and the time between steps, exact, on sessions testing the
    walk's rules; the same on fresh and on folded traces."""
    late = WINDOW.end_ns // S - T0 // S
    write(store, trace(1, "s1", "GET /cart", 0) + trace(3, "s1", "POST /pay", 200))
    # Checkout in another service (the step names no service), arriving last.
    write(store, trace(2, "s1", "POST /checkout", 100, service="api"))
    # Checkout before the cart does not count; the cart after it enters.
    write(store, trace(4, "s2", "POST /checkout", 5) + trace(5, "s2", "GET /cart", 10))
    # A cart and a checkout at the same start: the lower trace id comes first.
    write(store, trace(7, "s3", "POST /checkout", 30) + trace(6, "s3", "GET /cart", 30))
    write(store, trace(9, "s4", "GET /cart", 30) + trace(8, "s4", "POST /checkout", 30))
    # A cart near the window's end, checkout and pay past it (within the gap).
    write(
        store,
        trace(10, "s5", "GET /cart", late - 10) + trace(11, "s5", "POST /checkout", late + 60),
    )
    write(store, trace(12, "s5", "POST /pay", late + 600))
    # A cart after the window's end never enters.
    write(
        store, trace(13, "s6", "GET /cart", late + 5) + trace(14, "s6", "POST /checkout", late + 9)
    )
    # Two carts: the first enters; pay before checkout is skipped, the one after counts.
    write(store, trace(15, "s7", "GET /cart", 1) + trace(16, "s7", "GET /cart", 2))
    write(store, trace(17, "s7", "POST /pay", 3) + trace(18, "s7", "POST /checkout", 4))
    write(store, trace(19, "s7", "POST /pay", 5))
    # Another service's cart is not the step ``web GET /cart``.
    write(store, trace(20, "s8", "GET /cart", 0, service="api"))
    expected_counts = (6, 4, 3)  # s1 s2 s3 s5 s7 enter with s4; s1 s3 s5 s7 check out
    for fold in (False, True):
        if fold:
            store.compact_rollups()
        journeys, gaps = counted(store, STEPS)
        assert journeys == expected_counts
        assert (journeys, gaps) == walked(store, STEPS)
        assert sum(count for _, count in gaps[2]) == 3
        # s3: checkout at the cart's start (trace 7 after trace 6): a gap of 0.
        assert (sketch.ZERO_BUCKET, 1) in gaps[1]
        assert gaps[0] == ()
    # A step repeated: the second cart of a journey is a later trace.
    twice = (CART, CART)
    assert counted(store, twice) == walked(store, twice)
    assert counted(store, twice)[0] == (6, 1)
    assert counted(store, (CART,)) == walked(store, (CART,)) == ((6,), ((),))


def test_filters_choose_the_journeys_counted(store: Store) -> None:
    """``service`` and ``attribute`` choose journeys as ``step_traces`` does: by any
    step of the journey in the window, a step outside the funnel too; the sample
    names chosen journeys only."""
    trial = {"app.plan": "trial"}
    write(store, trace(1, "s1", "GET /cart", 0, attributes=trial))
    write(store, trace(2, "s1", "POST /checkout", 5) + trace(3, "s1", "POST /pay", 9))
    write(store, trace(4, "s2", "GET /cart", 0, attributes={"app.plan": "paid"}))
    write(store, trace(5, "s2", "POST /checkout", 5))
    write(
        store, trace(6, "s3", "GET /cart", 0) + trace(7, "s3", "POST /checkout", 3, service="shop")
    )
    write(store, trace(8, "s4", "GET /home", 0, attributes=trial) + trace(9, "s4", "GET /cart", 2))
    write(store, trace(10, "s4", "POST /checkout", 4))
    for fold in (False, True):
        if fold:
            store.compact_rollups()
        for filters, expected, sessions in (
            ({"attribute": ("app.plan", "trial")}, (2, 2, 1), {"s1", "s4"}),
            ({"service": "shop"}, (1, 1, 0), {"s3"}),
            ({"service": "payments", "attribute": ("app.plan", "paid")}, (1, 1, 0), {"s2"}),
            ({}, (4, 4, 1), {"s1", "s2", "s3", "s4"}),
        ):
            journeys, gaps = counted(store, STEPS, **filters)
            assert journeys == expected, filters
            assert (journeys, gaps) == walked(store, STEPS, **filters)
            assert set(store.funnel_reach(WINDOW, STEPS, sample=10, **filters).sample) == sessions


def test_synthetic_sessionless_and_deleted_traces_are_not_counted(store: Store) -> None:
    """A synthetic journey, a trace without a session and a deleted trace count for
    nothing, as in the map."""
    probe = {JOURNEY_SYNTHETIC: SYNTHETIC_TRUE}
    write(store, trace(1, "s1", "GET /cart", 0) + trace(2, "s1", "POST /checkout", 5))
    write(store, trace(3, "s2", "GET /cart", 0, attributes=probe))
    write(store, trace(4, "", "GET /cart", 0))
    write(store, trace(5, "s3", "GET /cart", 0) + trace(6, "s3", "POST /checkout", 5))
    assert counted(store, STEPS)[0] == (2, 2, 0)
    store.compact_rollups()
    store.delete_traces([f"{6:032x}"])
    assert counted(store, STEPS)[0] == (2, 1, 0)
    assert counted(store, STEPS) == walked(store, STEPS)


def test_a_sample_of_entering_sessions_and_their_traces(store: Store) -> None:
    """``sample`` names at most that many entering sessions, the same on every call;
    ``step_traces(sessions=…)`` reads those sessions' journeys only."""
    records: list[SpanRecord] = []
    for n in range(30):
        records += trace(2 * n + 1, f"s{n}", "GET /cart", n)
        records += trace(2 * n + 2, f"s{n}", "POST /checkout", n + 1)
    records += trace(100, "other", "POST /checkout", 0)
    write(store, records)
    everyone = store.funnel_reach(WINDOW, STEPS, sample=100)
    assert sorted(everyone.sample) == sorted(f"s{n}" for n in range(30))
    assert store.funnel_reach(WINDOW, STEPS).sample == ()
    picked = store.funnel_reach(WINDOW, STEPS, sample=10)
    assert len(picked.sample) == 10
    assert set(picked.sample) < set(everyone.sample)
    assert store.funnel_reach(WINDOW, STEPS, sample=10).sample == picked.sample
    assert picked.journeys == everyone.journeys == (30, 30, 0)
    traces, capped = store.step_traces(WINDOW, funnel=STEPS, sessions=picked.sample)
    assert not capped
    assert {t.session_id for t in traces} == set(picked.sample)
    assert len(traces) == 20
    whole, _ = store.step_traces(WINDOW, funnel=STEPS)
    assert traces == [t for t in whole if t.session_id in picked.sample]
    assert store.step_traces(WINDOW, sessions=["other"])[0] == [
        t for t in store.step_traces(WINDOW)[0] if t.session_id == "other"
    ]


def _python_funnel(store: Store, funnel: Funnel, window: TimeWindow) -> dict[str, Any]:
    """The funnel's figures and drop-offs as walked in Python over every journey (the
    answer before the store counted funnels)."""
    traces, _ = store.step_traces(window)
    journeys = progress(traces, funnel.steps, window)
    attributes = journey_query._attribute_samples(store, journeys, len(funnel.steps) - 1)
    return {
        "steps": [
            (s.match.label, s.journeys, s.conversion, s.overall, s.median_ns, s.p90_ns)
            for s in summarize(journeys, funnel.steps)
        ],
        "drop_offs": [
            (
                d.source.label, d.target.label, d.stopped, d.went_on, d.headline,
                [
                    (describe(f, d.source), f.kind, f.service, f.key, f.value, f.stopped_with,
                     f.went_on_with, None if math.isinf(f.ratio) else f.ratio, f.p_value,
                     f.significant, list(f.examples))
                    for f in d.factors
                ],
            )
            for d in drop_offs(journeys, funnel.steps, attributes)
        ],
    }  # fmt: skip


def _answered(answer: dict[str, Any]) -> dict[str, Any]:
    fields = ("text", "kind", "service", "key", "value", "stopped_with", "went_on_with",
              "ratio", "p_value", "significant", "example_traces")  # fmt: skip
    return {
        "steps": [
            (s["step"], s["journeys"], s["conversion"], s["overall"], s["median_ns"], s["p90_ns"])
            for s in answer["steps"]
        ],
        "drop_offs": [
            (
                d["source"], d["target"], d["stopped"], d["went_on"], d["headline"],
                [tuple(f[name] for name in fields) for f in d["factors"]],
            )
            for d in answer["drop_offs"]
        ],
    }  # fmt: skip


SHOP: Final = Funnel("checkout", tuple(StepMatch(step) for step in FUNNEL))
SHOP_WINDOW: Final = TimeWindow(SHOP_T0, SHOP_T0 + 3600 * S)


def test_a_funnel_of_fewer_journeys_than_the_sample_answers_as_the_walk(store: Store) -> None:
    """Fewer journeys enter than ``LEAVING_SAMPLE``: the answer is the one walking every
    journey in Python gave, the planted cause first, and says all were read."""
    assert journey_query.LEAVING_SAMPLE > 200
    write(store, shoppers())
    for fold in (False, True):
        if fold:
            store.compact_rollups()
        answer = journey_query.funnel(store, SHOP, SHOP_WINDOW, None)
        assert _answered(answer) == _python_funnel(store, SHOP, SHOP_WINDOW)
        assert answer["sampled"] == {"journeys": 200, "of": 200}
        assert not answer["partial"]
        assert answer["drop_offs"][2]["factors"][0]["service"] == "payments"


def test_a_sampled_funnel_keeps_exact_counts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """More journeys enter than the sample holds: steps and stopped/went-on counts stay
    exact, the factors come from the sample, and the answer and sentences say so."""
    write(store, shoppers())
    store.compact_rollups()
    whole = _python_funnel(store, SHOP, SHOP_WINDOW)
    monkeypatch.setattr(journey_query, "LEAVING_SAMPLE", 120)
    answer = journey_query.funnel(store, SHOP, SHOP_WINDOW, None)
    assert answer["sampled"] == {"journeys": 120, "of": 200}
    found = _answered(answer)
    assert found["steps"] == whole["steps"]
    assert [d[:4] for d in found["drop_offs"]] == [d[:4] for d in whole["drop_offs"]]
    checkout = answer["drop_offs"][2]
    first = checkout["factors"][0]
    assert (first["kind"], first["service"]) == ("error", "payments")
    assert first["stopped_with"] + first["went_on_with"] < 60
    assert checkout["headline"].endswith("of 120 sampled journeys)")
