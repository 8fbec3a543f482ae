"""Journey narrative: a user's traces as steps with think time, failures and where time went."""

from __future__ import annotations

import pytest

from threadline.server.analysis.journey_narrative import narrate_journey
from threadline.server.model import SpanEvent, SpanKind, SpanRecord, StatusCode

MS = 1_000_000
T0 = 1_750_000_000_000 * MS


def span(
    trace: str,
    span_id: str,
    parent: str | None,
    start_ms: int,
    end_ms: int,
    *,
    service: str,
    name: str = "",
    status: StatusCode = StatusCode.UNSET,
    events: tuple[SpanEvent, ...] = (),
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace * 32,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name or f"op-{span_id}",
        kind=SpanKind.SERVER,
        start_ns=T0 + start_ms * MS,
        end_ns=T0 + end_ms * MS,
        status=status,
        session_id="s-42",
        user_id="u-7",
        events=events,
    )


# Browse products (catalog does the work), add to cart, then a checkout that fails in payments.
BROWSE = [
    span("1", "b-gw", None, 0, 200, service="gateway", name="GET /products"),
    span("1", "b-cat", "b-gw", 20, 190, service="catalog"),
]
ADD_TO_CART = [
    span("2", "c-gw", None, 2200, 2500, service="gateway", name="POST /cart"),
    span("2", "c-cart", "c-gw", 2210, 2490, service="cart"),
    span("2", "c-cat", "c-cart", 2300, 2420, service="catalog"),
]
CHECKOUT = [
    span(
        "3",
        "k-gw",
        None,
        10_500,
        10_800,
        service="gateway",
        name="POST /checkout",
        status=StatusCode.ERROR,
    ),
    span("3", "k-ord", "k-gw", 10_510, 10_790, service="orders", status=StatusCode.ERROR),
    span(
        "3",
        "k-pay",
        "k-ord",
        10_550,
        10_750,
        service="payments",
        status=StatusCode.ERROR,
        events=(
            SpanEvent(
                "exception",
                T0 + 10_740 * MS,
                {"exception.type": "CardDeclined", "exception.message": "insufficient funds"},
            ),
        ),
    ),
]


def test_three_step_journey_with_think_time_failure_and_top_service() -> None:
    """Steps come oldest first with the pauses between them, the failure, the stop, the culprit."""
    journey = narrate_journey([CHECKOUT, BROWSE, ADD_TO_CART])  # any order in, time order out
    assert (journey.session_id, journey.user_id) == ("s-42", "u-7")
    assert [
        (s.entry_service, s.entry_operation, s.start_ns - T0, s.duration_ns, s.think_time_ns)
        for s in journey.steps
    ] == [
        ("gateway", "GET /products", 0, 200 * MS, None),
        ("gateway", "POST /cart", 2200 * MS, 300 * MS, 2000 * MS),
        ("gateway", "POST /checkout", 10_500 * MS, 300 * MS, 8000 * MS),
    ]
    assert [s.top_service for s in journey.steps] == ["catalog", "cart", "payments"]
    assert [s.services for s in journey.steps] == [
        ("catalog", "gateway"),
        ("cart", "catalog", "gateway"),
        ("gateway", "orders", "payments"),
    ]
    assert [s.failed for s in journey.steps] == [False, False, True]

    assert journey.duration_ns == 10_800 * MS
    assert journey.think_time_ns == 10_000 * MS
    assert [s.trace_id for s in journey.failed_steps] == ["3" * 32]
    stopped = journey.stopped_at
    assert stopped is not None
    assert stopped.entry_operation == "POST /checkout"
    assert journey.stopped_after_failure
    assert stopped.error is not None
    assert (stopped.error.service, stopped.error.exception_type, stopped.error.message) == (
        "payments",
        "CardDeclined",
        "insufficient funds",
    )
    assert [p.service for p in stopped.error.propagated_by] == ["orders", "gateway"]

    # Catalog leads the journey (170 + 120 ms) though it was never in the failing step.
    assert journey.top_service == "catalog"
    assert [(s.name, s.duration_ns) for s in journey.service_shares] == [
        ("catalog", 290 * MS),
        ("payments", 200 * MS),
        ("cart", 160 * MS),
        ("orders", 80 * MS),
        ("gateway", 70 * MS),
    ]
    assert journey.service_shares[0].fraction == pytest.approx(290 / 800)


def test_step_started_while_an_earlier_one_ran_has_no_think_time() -> None:
    """Parallel requests from one page add no think time, measured from the latest end so far."""
    long_request = [span("a", "a1", None, 0, 1000, service="web")]
    overlapping = [span("b", "b1", None, 200, 300, service="web")]
    after_both = [span("c", "c1", None, 1500, 1600, service="web")]
    journey = narrate_journey([after_both, overlapping, long_request])
    assert [s.think_time_ns for s in journey.steps] == [None, 0, 500 * MS]
    assert not journey.stopped_after_failure
    assert journey.failed_steps == ()


def test_empty_journey() -> None:
    """No traces (or only empty ones) is a journey with no steps."""
    journey = narrate_journey([[], []])
    assert journey.steps == ()
    assert (journey.stopped_at, journey.top_service, journey.duration_ns) == (None, None, 0)
