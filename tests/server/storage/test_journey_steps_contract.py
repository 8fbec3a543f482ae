"""The ``Store`` contract for journey steps: the map and the traces funnels read.

Each test writes sessions the way live traffic does (late, out of order, re-sent,
synthetic, deleted) and checks the steps, transitions and ended-here counts.
"""

from __future__ import annotations

import time
from typing import Final

import pytest

from support.spans import span_record
from threadline.conventions import JOURNEY_SYNTHETIC, SYNTHETIC_TRUE
from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import Progress, StepMatch, progress, walked
from threadline.server.analysis.sketch import bucket_value
from threadline.server.batch import SpanBatch
from threadline.server.journey_model import SESSION_GAP_NS, Step
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.base import Store

pytestmark = pytest.mark.store_methods("journey_map", "step_traces")

S: Final = 1_000_000_000
T0: Final = 1_700_000_040 * S
WAIT_S: Final = 30.0
WINDOW: Final = TimeWindow(T0, T0 + 3600 * S)
CART: Final = Step("web", "GET /cart")
CHECKOUT: Final = Step("web", "POST /checkout")
PAY: Final = Step("web", "POST /pay")
CART_THEN_CHECKOUT: Final = (StepMatch("GET /cart", "web"), StepMatch("POST /checkout", "web"))


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def visit(
    n: int, session: str, step: Step, at_s: int, *, took_s: int = 1, **fields: object
) -> list[SpanRecord]:
    """A trace of ``step`` at ``at_s`` with a payments child (failing with ``failed``)."""
    failed = bool(fields.pop("failed", False))
    trace = f"{n:032x}"
    start = T0 + at_s * S
    status = StatusCode.ERROR if failed else StatusCode.UNSET
    return [
        span_record(
            trace,
            "r",
            None,
            step.service,
            step.operation,
            start,
            start + took_s * S,
            session_id=session,
            **fields,
        ),
        span_record(
            trace,
            "c",
            "r",
            "payments",
            "charge",
            start,
            start + S // 2,
            kind=SpanKind.SERVER,
            status=status,
            session_id=session,
        ),
    ]


def flows(store: Store) -> dict[tuple[Step, Step], int]:
    _, transitions = store.journey_map(WINDOW)
    return {(t.source, t.target): t.count for t in transitions}


def test_transitions_follow_start_order_whatever_the_arrival_order(store: Store) -> None:
    """A session's middle trace arriving last is paired between the other two."""
    write(store, visit(1, "s1", CART, 0) + visit(3, "s1", PAY, 200))
    write(store, visit(2, "s1", CHECKOUT, 100))
    write(store, visit(4, "s2", CART, 10))
    assert flows(store) == {(CART, CHECKOUT): 1, (CHECKOUT, PAY): 1}
    store.compact_rollups()
    assert flows(store) == {(CART, CHECKOUT): 1, (CHECKOUT, PAY): 1}
    steps, _ = store.journey_map(WINDOW)
    by_step = {s.step: s for s in steps}
    assert by_step[CART].traces == 2
    assert by_step[CART].journeys == 2
    assert by_step[CART].ended == 1
    assert by_step[PAY].ended == 1
    assert by_step[CHECKOUT].ended == 0


def test_resent_spans_count_once(store: Store) -> None:
    """The same batch sent twice, before and after a fold, changes no count."""
    batch = visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 60)
    write(store, batch)
    write(store, batch)
    store.compact_rollups()
    write(store, batch)
    assert flows(store) == {(CART, CHECKOUT): 1}
    steps, _ = store.journey_map(WINDOW)
    assert sorted(s.traces for s in steps) == [1, 1]


def test_think_time_latency_and_errors(store: Store) -> None:
    """Think time runs from a trace's end to the next start; errors and latency per step."""
    write(store, visit(1, "s1", CART, 0, took_s=2) + visit(2, "s1", CHECKOUT, 12, failed=True))
    store.compact_rollups()
    steps, transitions = store.journey_map(WINDOW)
    (move,) = transitions
    ((bucket, count),) = move.think
    assert count == 1
    assert abs(bucket_value(bucket) - 10 * S) < 0.02 * 10 * S
    by_step = {s.step: s for s in steps}
    assert by_step[CHECKOUT].errors == 1
    assert by_step[CART].errors == 0
    assert by_step[CART].p50_ns == 2 * S


def test_a_long_pause_ends_the_journey(store: Store) -> None:
    """A next step more than the session gap later starts a new journey."""
    gap_s = SESSION_GAP_NS // S + 60
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, gap_s))
    assert flows(store) == {}


def test_synthetic_journeys_and_sessionless_traces_are_left_out(store: Store) -> None:
    """Traces marked synthetic, and traces without a session, make no step; a journey id
    alone (real traffic may carry one) does not make a trace synthetic."""
    probe = {JOURNEY_SYNTHETIC: SYNTHETIC_TRUE}
    write(store, visit(1, "s1", CART, 0, journey_id="probe", attributes=probe))
    write(store, visit(2, "s1", CHECKOUT, 5, journey_id="checkout-flow"))
    write(store, visit(3, "", CART, 0))
    store.compact_rollups()
    steps, transitions = store.journey_map(WINDOW)
    assert [s.step for s in steps] == [CHECKOUT]
    assert transitions == []


def test_deleted_traces_leave_the_map(store: Store) -> None:
    """Tail sampling or erasure deleting a trace removes its step."""
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 5))
    store.compact_rollups()
    store.delete_traces([f"{2:032x}"])
    assert flows(store) == {}
    steps, _ = store.journey_map(WINDOW)
    assert [s.step for s in steps] == [CART]


def test_service_filter_and_step_traces(store: Store) -> None:
    """``service`` keeps journeys touching it; ``funnel`` those entering at its step."""
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 5, failed=True))
    write(
        store, [span_record(f"{9:032x}", "r", None, "shop", "GET /", T0, T0 + S, session_id="s2")]
    )
    steps, _ = store.journey_map(WINDOW, service="payments")
    assert {s.step for s in steps} == {CART, CHECKOUT}
    traces, capped = store.step_traces(WINDOW, funnel=CART_THEN_CHECKOUT)
    assert not capped
    assert [t.step for t in traces] == [CART, CHECKOUT]
    assert traces[1].failed
    assert traces[1].error_services == ("payments",)


def test_attribute_filter_keeps_journeys_whose_entry_span_carries_the_value(
    store: Store,
) -> None:
    """``attribute`` keeps journeys with a step in the window whose entry span
    carries key=value, with all their steps; the same before and after a fold. A
    value on a child span, a user id and an over-long value never match."""
    trial = {"app.plan": "trial", "user.id": "u1", "app.note": "x" * 65}
    write(store, visit(1, "s1", CART, 0, attributes=trial) + visit(2, "s1", CHECKOUT, 5))
    write(store, visit(3, "s2", CART, 0, attributes={"app.plan": "paid"}))
    child = visit(4, "s3", CART, 0)
    child[1] = span_record(
        f"{4:032x}", "c", "r", "payments", "charge", T0, T0 + S, session_id="s3",
        attributes={"app.plan": "trial"},
    )  # fmt: skip
    write(store, child)
    for fold in (False, True):
        if fold:
            store.compact_rollups()
        steps, transitions = store.journey_map(WINDOW, attribute=("app.plan", "trial"))
        assert {(s.step, s.journeys) for s in steps} == {(CART, 1), (CHECKOUT, 1)}
        assert [(t.source, t.target) for t in transitions] == [(CART, CHECKOUT)]
        traces, _ = store.step_traces(
            WINDOW, funnel=CART_THEN_CHECKOUT, attribute=("app.plan", "trial")
        )
        assert [t.trace_id for t in traces] == [f"{1:032x}", f"{2:032x}"]
        paid, _ = store.step_traces(WINDOW, service="web", attribute=("app.plan", "paid"))
        assert [t.session_id for t in paid] == ["s2"]
        for hidden in (("user.id", "u1"), ("app.note", "x" * 65)):
            assert store.journey_map(WINDOW, attribute=hidden) == ([], [])


def test_a_folded_step_names_the_service_its_error_started_in(store: Store) -> None:
    """Once folded, a failed trace's step carries its error origin (the payments child
    that failed, under a web root marked failed too); a trace without an error none."""
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 5, failed=True))
    store.compact_rollups()
    traces, _ = store.step_traces(WINDOW)
    assert [(t.step, t.error_origin) for t in traces] == [(CART, None), (CHECKOUT, "payments")]


def test_health_counts_writes_until_their_error_origins_show(store: Store) -> None:
    """A store names error origins after the write (at a fold, or when its writer is
    idle), and ``health().unfolded_commits`` says when: once it is back to 0, with
    nothing asked of the store, the failed trace's step names the service its error
    started in. A script reading origins waits on it; a store that counted nothing
    would be read before its deferred work and show no origin."""
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 5, failed=True))
    deadline = time.monotonic() + WAIT_S
    while store.health().unfolded_commits:
        assert time.monotonic() < deadline, "the writer never did its deferred work"
        time.sleep(0.1)
    traces, _ = store.step_traces(WINDOW)
    assert [(t.step, t.error_origin) for t in traces] == [(CART, None), (CHECKOUT, "payments")]


def test_a_funnel_entry_without_a_service_reads_only_journeys_taking_it(store: Store) -> None:
    """A funnel's first step written as an operation alone (any service) keeps the
    journeys taking it, and only those: the others are never read."""
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 5))
    write(
        store, [span_record(f"{9:032x}", "r", None, "shop", "GET /", T0, T0 + S, session_id="s2")]
    )
    traces, capped = store.step_traces(
        WINDOW, funnel=(StepMatch("GET /cart"), StepMatch("POST /checkout"))
    )
    assert not capped
    assert [(t.session_id, t.step) for t in traces] == [("s1", CART), ("s1", CHECKOUT)]
    everyone, _ = store.step_traces(WINDOW)
    assert {t.session_id for t in everyone} == {"s1", "s2"}


def test_a_funnel_reads_each_journey_from_its_entry_to_the_step_completing_it(
    store: Store,
) -> None:
    """Traces before a journey's entry in the window and after the trace completing the
    funnel are never read for it (its walk and the drop-off comparison end there); a
    journey stopping before the last step is read to its end. Between, only the
    traces reaching a step and those that met an error are read: the others change
    neither the walk nor what a journey met. The same as the walk's own cut
    (``walked``) of every trace."""
    home = Step("web", "GET /home")
    write(
        store,
        visit(1, "s1", home, 0)
        + visit(2, "s1", CART, 5)
        + visit(3, "s1", CART, 8)
        + visit(4, "s1", home, 9, failed=True)
        + visit(5, "s1", CHECKOUT, 10)
        + visit(6, "s1", PAY, 15)
        + visit(7, "s2", CART, 0)
        + visit(8, "s2", home, 5)
        + visit(9, "s2", home, 6, failed=True)
        + visit(10, "s3", home, 0),
    )
    for fold in (False, True):
        if fold:
            store.compact_rollups()
        traces, _ = store.step_traces(WINDOW, funnel=CART_THEN_CHECKOUT)
        assert [(t.session_id, t.trace_id[-1], t.step) for t in traces] == [
            ("s1", "2", CART),
            ("s1", "4", home),
            ("s1", "5", CHECKOUT),
            ("s2", "7", CART),
            ("s2", "9", home),
        ]
        everything, _ = store.step_traces(WINDOW)
        assert len(everything) == 10
        assert traces == walked(everything, CART_THEN_CHECKOUT, WINDOW)
        assert progress(traces, CART_THEN_CHECKOUT, WINDOW) == [
            Progress(j.reached, tuple(t for t in j.traces if t in traces))
            for j in progress(everything, CART_THEN_CHECKOUT, WINDOW)
        ]


def test_journey_attributes_count_each_side_and_never_read_out_skipped_keys(
    store: Store,
) -> None:
    """Values on the named traces are counted per side, once per trace, with
    examples of the stopped side; a skipped key (a user id) is never returned, and a
    pair without stopped traces reads nothing."""
    plans = ["trial", "trial", "trial", "paid", "trial", "paid"]
    for n, plan in enumerate(plans):
        attributes = {"app.plan": plan, "user.id": f"user-{n}"}
        write(store, visit(n + 1, f"s{n}", CHECKOUT, n, attributes=attributes))
    ids = [f"{n + 1:032x}" for n in range(len(plans))]
    found, nobody = store.journey_attributes(
        [(ids[:4], ids[4:]), ([], ids)],
        T0,
        T0 + 3600 * S,
        skip_keys=["user.id"],
        min_support=1,
    )
    assert nobody == []
    values = {(a.key, a.value): (a.stopped, a.went_on) for a in found}
    assert values[("app.plan", "trial")] == (3, 1)
    assert values[("app.plan", "paid")] == (1, 1)
    assert not [a for a in found if a.key == "user.id"]
    trial = next(a for a in found if a.value == "trial")
    assert trial.examples == tuple(ids[:3])
    assert (trial.key_values, trial.key_traces) == (2, 6)


def test_erasing_a_user_leaves_none_of_their_journey_steps(store: Store) -> None:
    """Erasure removes every step of the user's sessions, the steps of traces that do not
    name the user included, from the map and from the traces funnels read."""
    write(store, visit(1, "s1", CART, 0, user_id="u1") + visit(2, "s1", CHECKOUT, 5))
    write(store, visit(3, "s2", CART, 10, user_id="u2") + visit(4, "s2", PAY, 20))
    store.compact_rollups()
    store.erase_user(["u1"])
    assert flows(store) == {(CART, PAY): 1}
    traces, _ = store.step_traces(WINDOW)
    assert {t.session_id for t in traces} == {"s2"}


def test_retention_drops_aged_steps_and_recounts_cut_traces(store: Store) -> None:
    """A trace wholly before the cutoff loses its step; a trace the cutoff cuts takes
    its step from the spans it keeps (its root gone, its earliest span names it)."""
    cut = f"{2:032x}"
    write(store, visit(1, "s1", CART, 0))
    write(
        store,
        [
            span_record(cut, "r", None, "web", "POST /checkout", T0 + 40 * S, T0 + 70 * S,
                        session_id="s1"),
            span_record(cut, "c", "r", "payments", "charge", T0 + 60 * S, T0 + 65 * S,
                        kind=SpanKind.SERVER, session_id="s1"),
        ],
    )  # fmt: skip
    write(store, visit(3, "s1", PAY, 100))
    store.compact_rollups()
    store.delete_older_than(T0 + 50 * S)
    charge = Step("payments", "charge")
    assert flows(store) == {(charge, PAY): 1}
    steps, _ = store.journey_map(WINDOW)
    assert {s.step: s.p50_ns for s in steps} == {charge: 5 * S, PAY: 1 * S}


def test_a_journey_taking_a_step_or_a_move_again_counts_once_in_any_window(
    store: Store,
) -> None:
    """A journey is counted once per step and per move it takes in a window, however
    often, also in a window that starts after its first time; a pause past the gap is
    no move, so the move after it is the journey's first. Checked with a trace
    arriving late between two others, before and after the steps are folded."""
    gap_s = SESSION_GAP_NS // S
    later = TimeWindow(T0 + 150 * S, WINDOW.end_ns)
    # s1 loops cart → checkout twice; its second cart arrives last.
    write(store, visit(1, "s1", CART, 0) + visit(2, "s1", CHECKOUT, 100))
    write(store, visit(4, "s1", CHECKOUT, 300))
    # s2 pauses past the gap after its first cart, then goes cart → checkout.
    write(store, visit(5, "s2", CART, 10) + visit(6, "s2", CHECKOUT, gap_s + 100))
    write(store, visit(7, "s2", CART, gap_s + 200) + visit(8, "s2", CHECKOUT, gap_s + 300))
    write(store, visit(3, "s1", CART, 200))
    for _ in range(2):
        steps, moves = store.journey_map(WINDOW)
        assert {(s.step, s.traces, s.journeys) for s in steps} == {(CART, 4, 2), (CHECKOUT, 4, 2)}
        assert {(t.source, t.target, t.count, t.journeys) for t in moves} == {
            (CART, CHECKOUT, 3, 2),
            (CHECKOUT, CART, 2, 2),
        }
        steps, moves = store.journey_map(later)
        assert {(s.step, s.traces, s.journeys) for s in steps} == {(CART, 2, 2), (CHECKOUT, 3, 2)}
        assert {(t.source, t.target, t.count, t.journeys) for t in moves} == {
            (CART, CHECKOUT, 2, 2),
            (CHECKOUT, CART, 1, 1),
        }
        store.compact_rollups()
