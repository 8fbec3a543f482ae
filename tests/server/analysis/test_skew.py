"""Clock-skew adjustment: cross-service hops moved into their caller, whole subtrees at once."""

from __future__ import annotations

from threadline.server.analysis.skew import SkewAdjustment, SkewReason, adjust_clock_skew
from threadline.server.analysis.tree import build_tree
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
    resource: dict[str, object] | None = None,
    attributes: dict[str, object] | None = None,
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
        resource=resource or {},
        attributes=attributes or {},
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


def out_of_window_hop(
    client_resource: dict[str, object],
    server_resource: dict[str, object],
    *,
    client_attributes: dict[str, object] | None = None,
    server_attributes: dict[str, object] | None = None,
) -> list[SpanRecord]:
    """web's CLIENT span and api's SERVER span that ends 5 units after it, then a child of api."""
    return [
        span(
            "client",
            None,
            100,
            200,
            service="web",
            kind=SpanKind.CLIENT,
            resource=client_resource,
            attributes=client_attributes,
        ),
        span(
            "server",
            "client",
            110,
            205,
            service="api",
            kind=SpanKind.SERVER,
            resource=server_resource,
            attributes=server_attributes,
        ),
        span("db", "server", 120, 204, service="api", resource=server_resource),
    ]


def test_services_on_one_host_are_never_shifted() -> None:
    """Two services naming the same host.name share its clock: a server span ending late stays."""
    host = {"host.name": "shop-1"}
    spans = out_of_window_hop(
        {**host, "service.instance.id": "a"}, {**host, "service.instance.id": "b"}
    )
    result = adjust_clock_skew(spans)
    assert result.adjustments == ()
    assert result.spans == tuple(spans)


def test_services_on_two_hosts_are_shifted_when_outside_the_window() -> None:
    """Different host.name: the same late server span is centred in its caller, subtree along."""
    spans = out_of_window_hop({"host.name": "web-1"}, {"host.name": "api-1"})
    result = adjust_clock_skew(spans)
    assert times(result.spans) == {"client": (100, 200), "server": (102, 197), "db": (112, 196)}
    assert [a.reason for a in result.adjustments] == [
        SkewReason.CENTRED_IN_PARENT,
        SkewReason.MOVED_WITH_ANCESTOR,
    ]


def test_differing_host_names_win_over_a_loopback_look() -> None:
    """Named hosts decide even when addresses look local (a sidecar proxy on loopback)."""
    spans = out_of_window_hop(
        {"host.name": "web-1"},
        {"host.name": "api-1"},
        client_attributes={"server.address": "localhost"},
        server_attributes={"client.address": "127.0.0.1"},
    )
    assert len(adjust_clock_skew(spans).adjustments) == 2


def test_one_process_shares_its_clock_across_service_names() -> None:
    """The same service.instance.id is one process, one clock, whatever the service names say."""
    same = {"service.instance.id": "9f1c"}
    assert adjust_clock_skew(out_of_window_hop(same, same)).adjustments == ()


def test_a_call_over_loopback_shares_the_clock() -> None:
    """A client calling 127.0.0.1 and a server seeing a 127.0.0.1 peer run on one machine.

    This is what the demo's services record: no host.name, one service.instance.id per
    process, and http.url / net.peer.ip on loopback.
    """
    spans = out_of_window_hop(
        {"service.instance.id": "a"},
        {"service.instance.id": "b"},
        client_attributes={"http.url": "http://127.0.0.1:46003/charges"},
        server_attributes={"net.peer.ip": "127.0.0.1", "net.peer.port": 55024},
    )
    assert adjust_clock_skew(spans).adjustments == ()


def test_loopback_on_one_side_only_is_not_enough() -> None:
    """A server that sees its peer on loopback while the client called a remote name is
    behind a local proxy: the caller may be on another machine, so the hop is judged."""
    spans = out_of_window_hop(
        {"service.instance.id": "a"},
        {"service.instance.id": "b"},
        client_attributes={"url.full": "http://api.internal:8080/charges"},
        server_attributes={"client.address": "127.0.0.6"},
    )
    assert len(adjust_clock_skew(spans).adjustments) == 2


def test_the_walk_hands_back_its_tree_only_when_no_span_moved() -> None:
    """Nothing moved: the tree the walk built is the tree of the spans handed back (the
    trace view reuses it). A span moved: no tree, since the moved times reorder it."""
    still = [
        span("client", None, 100, 200, service="web", kind=SpanKind.CLIENT),
        span("server", "client", 120, 180, service="api", kind=SpanKind.SERVER),
    ]
    kept = adjust_clock_skew(still)
    assert kept.tree is not None
    assert kept.tree == build_tree(kept.spans)
    moved = adjust_clock_skew(
        [*still, span("late", "server", 500, 520, service="db", kind=SpanKind.SERVER)]
    )
    assert moved.adjustments
    assert moved.tree is None
