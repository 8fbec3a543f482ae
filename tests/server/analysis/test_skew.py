"""Clock-skew adjustment: cross-service hops moved into their caller, whole subtrees at once."""

from __future__ import annotations

from threadline.server.analysis.skew import SkewAdjustment, SkewReason, adjust_clock_skew
from threadline.server.model import SpanEvent, SpanKind, SpanLink, SpanRecord

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MS = 1_000_000
SECOND = 1000 * MS


def span(
    span_id: str,
    parent: str | None,
    start: int,
    end: int,
    *,
    service: str,
    kind: SpanKind = SpanKind.INTERNAL,
    events: tuple[SpanEvent, ...] = (),
    links: tuple[SpanLink, ...] = (),
) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=f"op-{span_id}",
        kind=kind,
        start_ns=start,
        end_ns=end,
        events=events,
        links=links,
    )


def times(spans: tuple[SpanRecord, ...]) -> dict[str, tuple[int, int]]:
    return {s.span_id: (s.start_ns, s.end_ns) for s in spans}


def test_server_two_seconds_ahead_is_centred_in_its_client_with_its_subtree() -> None:
    """A service whose clock is 2 s ahead is moved back 2 s, with everything below it."""
    ahead = 2 * SECOND  # orders and postgres run on a host whose clock is 2 s fast
    spans = [
        span("gw", None, 0, 100 * MS, service="gateway", kind=SpanKind.SERVER),
        span("call", "gw", 10 * MS, 90 * MS, service="gateway", kind=SpanKind.CLIENT),
        span(
            "orders",
            "call",
            ahead + 20 * MS,
            ahead + 80 * MS,
            service="orders",
            kind=SpanKind.SERVER,
            events=(SpanEvent("validated", ahead + 30 * MS),),
        ),
        span("validate", "orders", ahead + 25 * MS, ahead + 35 * MS, service="orders"),
        span(
            "query",
            "orders",
            ahead + 50 * MS,
            ahead + 70 * MS,
            service="orders",
            kind=SpanKind.CLIENT,
        ),
        span(
            "pg",
            "query",
            ahead + 55 * MS,
            ahead + 65 * MS,
            service="postgres",
            kind=SpanKind.SERVER,
        ),
    ]
    result = adjust_clock_skew(spans)
    assert times(result.spans) == {
        "gw": (0, 100 * MS),
        "call": (10 * MS, 90 * MS),
        "orders": (20 * MS, 80 * MS),  # centred: 10 ms of latency either side
        "validate": (25 * MS, 35 * MS),
        "query": (50 * MS, 70 * MS),
        "pg": (55 * MS, 65 * MS),
    }
    assert result.spans[2].events == (SpanEvent("validated", 30 * MS),)
    assert result.adjustments == (
        SkewAdjustment("orders", -ahead, SkewReason.CENTRED_IN_PARENT, "orders"),
        SkewAdjustment("validate", -ahead, SkewReason.MOVED_WITH_ANCESTOR, "orders"),
        SkewAdjustment("query", -ahead, SkewReason.MOVED_WITH_ANCESTOR, "orders"),
        # postgres has its own clock: judged against the adjusted client, not moved with orders
        SkewAdjustment("pg", -ahead, SkewReason.CENTRED_IN_PARENT, "pg"),
    )


def test_server_behind_its_client_splits_the_latency_evenly() -> None:
    """A server whose clock is behind moves forward so the spare time is split before and after."""
    spans = [
        span("client", None, 100, 200, service="web", kind=SpanKind.CLIENT),
        span("server", "client", 50, 130, service="api", kind=SpanKind.SERVER),
    ]
    result = adjust_clock_skew(spans)
    assert times(result.spans)["server"] == (110, 190)
    assert result.adjustments == (
        SkewAdjustment("server", 60, SkewReason.CENTRED_IN_PARENT, "server"),
    )


def test_children_already_inside_their_parent_are_left_alone() -> None:
    """A cross-service child that fits in its caller, even touching its edges, is not moved."""
    spans = [
        span("client", None, 100, 200, service="web", kind=SpanKind.CLIENT),
        span("server", "client", 100, 200, service="api", kind=SpanKind.SERVER),
        span("inner", "server", 120, 150, service="db", kind=SpanKind.SERVER),
    ]
    result = adjust_clock_skew(spans)
    assert result.spans == tuple(spans)
    assert result.adjustments == ()


def test_same_service_children_are_never_shifted() -> None:
    """A child on its parent's clock is shown as recorded, even when it sticks out."""
    spans = [
        span("parent", None, 100, 200, service="web"),
        span("early", "parent", 90, 150, service="web"),
        span("late", "parent", 150, 260, service="web"),
    ]
    result = adjust_clock_skew(spans)
    assert result.spans == tuple(spans)
    assert result.adjustments == ()


def test_cross_service_child_longer_than_its_parent_is_not_shifted() -> None:
    """A callee that outlasted its caller says nothing about the clocks and stays put."""
    spans = [
        span("client", None, 100, 200, service="web", kind=SpanKind.CLIENT),
        span("server", "client", 150, 400, service="api", kind=SpanKind.SERVER),
    ]
    assert adjust_clock_skew(spans).adjustments == ()


def test_consumer_may_end_after_its_producer() -> None:
    """A message consumer running long after the producer ended is not moved."""
    spans = [
        span("publish", None, 100, 110, service="shop", kind=SpanKind.PRODUCER),
        span("process", "publish", 500, 900, service="worker", kind=SpanKind.CONSUMER),
    ]
    result = adjust_clock_skew(spans)
    assert result.spans == tuple(spans)
    assert result.adjustments == ()


def test_linked_child_may_end_after_its_parent() -> None:
    """A span with links (batch or async work) that ends after its parent is not moved."""
    link = SpanLink(trace_id=TRACE, span_id="other")
    spans = [
        span("parent", None, 100, 200, service="web", kind=SpanKind.CLIENT),
        span("batch", "parent", 150, 230, service="jobs", kind=SpanKind.SERVER, links=(link,)),
    ]
    assert adjust_clock_skew(spans).adjustments == ()


def test_consumer_that_starts_before_its_producer_starts_with_it() -> None:
    """An async child recorded before its cause moves just enough to start with its parent."""
    spans = [
        span("publish", None, 1000, 1010, service="shop", kind=SpanKind.PRODUCER),
        span("process", "publish", 400, 900, service="worker", kind=SpanKind.CONSUMER),
        span("handle", "process", 500, 600, service="worker"),
    ]
    result = adjust_clock_skew(spans)
    assert times(result.spans) == {
        "publish": (1000, 1010),
        "process": (1000, 1500),
        "handle": (1100, 1200),
    }
    assert [(a.span_id, a.shift_ns, a.reason) for a in result.adjustments] == [
        ("process", 600, SkewReason.STARTED_BEFORE_PARENT),
        ("handle", 600, SkewReason.MOVED_WITH_ANCESTOR),
    ]


def test_orphans_have_no_reference_and_are_not_shifted() -> None:
    """A span whose parent never arrived keeps its times, as does its subtree."""
    spans = [
        span("root", None, 0, 100, service="web"),
        span("lost", "missing", 5000, 6000, service="api", kind=SpanKind.SERVER),
        span("below", "lost", 5100, 5200, service="db", kind=SpanKind.SERVER),
    ]
    result = adjust_clock_skew(spans)
    assert result.spans == tuple(spans)
    assert result.adjustments == ()


def test_result_keeps_input_order_and_drops_duplicates() -> None:
    """Adjusted spans come back once each, in the order they were given."""
    child = span("child", "root", 900, 950, service="api", kind=SpanKind.SERVER)
    root = span("root", None, 0, 100, service="web", kind=SpanKind.CLIENT)
    result = adjust_clock_skew([child, root, child])
    assert [s.span_id for s in result.spans] == ["child", "root"]
    assert times(result.spans)["child"] == (25, 75)
