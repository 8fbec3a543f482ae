"""The span tree: parent links, orphans, order, deduplication and exact self time."""

from __future__ import annotations

import random

from threadline.server.analysis.tree import (
    build_tree,
    deduplicate,
    self_time_ns,
    summarize,
)
from threadline.server.model import SpanKind, SpanRecord, StatusCode

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(
    span_id: str,
    parent: str | None,
    start: int,
    end: int,
    *,
    service: str = "web",
    name: str | None = None,
    status: StatusCode = StatusCode.UNSET,
    session_id: str | None = None,
) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name or f"op-{span_id}",
        kind=SpanKind.INTERNAL,
        start_ns=start,
        end_ns=end,
        status=status,
        session_id=session_id,
    )


def order(spans: list[SpanRecord]) -> list[tuple[str, int, bool]]:
    return [(n.span.span_id, n.depth, n.orphan) for n in build_tree(spans).nodes]


def test_children_follow_their_parent_depth_first_by_start_time() -> None:
    """A waterfall lists each span under its parent, siblings in start order."""
    spans = [
        span("a", None, 0, 100),
        span("b", "a", 10, 50),
        span("c", "a", 5, 30),
        span("d", "b", 12, 20),
        span("e", "c", 6, 8),
    ]
    assert order(spans) == [
        ("a", 0, False),
        ("c", 1, False),
        ("e", 2, False),
        ("b", 1, False),
        ("d", 2, False),
    ]


def test_order_does_not_depend_on_input_order() -> None:
    """The same spans in any order give the same tree."""
    spans = [span(f"{i:02d}", None if i == 0 else f"{(i - 1) // 2:02d}", i, 100) for i in range(15)]
    expected = order(spans)
    shuffled = spans[:]
    random.Random(7).shuffle(shuffled)
    assert order(shuffled) == expected


def test_span_whose_parent_never_arrived_is_an_orphan_shown_at_top_level() -> None:
    """A span with a missing parent is kept, at depth 0, flagged as an orphan, with its subtree."""
    spans = [
        span("root", None, 0, 100),
        span("lost", "never-arrived", 40, 60, service="queue"),
        span("under-lost", "lost", 45, 50, service="queue"),
        span("child", "root", 10, 20),
    ]
    assert order(spans) == [
        ("root", 0, False),
        ("child", 1, False),
        ("lost", 0, True),
        ("under-lost", 1, False),
    ]


def test_empty_parent_id_means_root_not_orphan() -> None:
    """Exporters that send an empty parent id instead of none still produce a root."""
    assert order([span("a", "", 0, 10)]) == [("a", 0, False)]


def test_duplicate_spans_are_shown_once() -> None:
    """A re-sent batch does not double spans in the tree."""
    root = span("a", None, 0, 100)
    child = span("b", "a", 10, 20)
    tree = build_tree([root, child, root, child, child])
    assert [n.span.span_id for n in tree.nodes] == ["a", "b"]
    assert tree.nodes[0].self_time_ns == 90  # the duplicate child is not subtracted twice


def test_deduplicate_keeps_the_first_copy_in_order() -> None:
    """Deduplication keeps one span per (trace, span id), the first seen, order unchanged."""
    first = span("a", None, 0, 10, name="first")
    again = span("a", None, 0, 10, name="again")
    other = span("b", "a", 1, 2)
    assert deduplicate([first, other, again]) == [first, other]


def test_parent_cycles_do_not_lose_or_repeat_spans() -> None:
    """Corrupt parent links forming a cycle still show every span exactly once."""
    spans = [
        span("x", "y", 10, 20),
        span("y", "x", 0, 30),
        span("self", "self", 5, 6),
        span("root", None, 1, 2),
    ]
    nodes = build_tree(spans).nodes
    assert sorted(n.span.span_id for n in nodes) == ["root", "self", "x", "y"]
    by_id = {n.span.span_id: n for n in nodes}
    assert by_id["root"].orphan is False
    assert (by_id["self"].depth, by_id["self"].orphan) == (0, True)
    # The cycle is entered at its earliest span, which is shown as an orphan root.
    assert (by_id["y"].depth, by_id["y"].orphan) == (0, True)
    assert by_id["x"].depth == 1


def test_self_time_subtracts_the_union_of_overlapping_children() -> None:
    """Overlapping parallel children count once; their time outside the parent is ignored."""
    parent = span("p", None, 0, 30)
    children = [
        span("a", "p", 5, 15),
        span("b", "p", 9, 21),  # overlaps a: together they cover 5..21
        span("c", "p", 28, 34),  # outlives the parent: only 28..30 counts
    ]
    assert self_time_ns(parent, children) == 30 - (21 - 5) - (30 - 28)


def test_self_time_edge_cases() -> None:
    """Nested, identical, touching, outside and zero-length children are handled exactly."""
    parent = span("p", None, 100, 200)
    assert self_time_ns(parent, []) == 100
    nested = [span("a", "p", 110, 190), span("b", "p", 120, 130)]
    assert self_time_ns(parent, nested) == 20
    identical = [span("a", "p", 120, 140), span("b", "p", 120, 140)]
    assert self_time_ns(parent, identical) == 80
    touching = [span("a", "p", 120, 140), span("b", "p", 140, 150)]
    assert self_time_ns(parent, touching) == 70
    outside = [span("a", "p", 0, 50), span("b", "p", 300, 400), span("c", "p", 150, 150)]
    assert self_time_ns(parent, outside) == 100
    covering = [span("a", "p", 50, 250)]
    assert self_time_ns(parent, covering) == 0
    unsorted = [span("a", "p", 180, 190), span("b", "p", 100, 105), span("c", "p", 150, 185)]
    assert self_time_ns(parent, unsorted) == 100 - 5 - 40


def test_self_time_matches_the_instants_no_child_covers() -> None:
    """On random children (overlapping, outside, reversed, zero length, starting before
    the span), self time is the number of the span's instants that no child covers."""
    rng = random.Random(11)
    checked_partial = 0
    for _ in range(2000):
        start = rng.randint(-20, 20)
        parent = span("p", None, start, start + rng.randint(-5, 60))
        children = []
        for n in range(rng.randint(0, 8)):
            child_start = rng.randint(-40, 80)
            children.append(span(f"c{n}", "p", child_start, child_start + rng.randint(-5, 50)))
        covered = {
            instant
            for child in children
            for instant in range(child.start_ns, child.end_ns)
            if parent.start_ns <= instant < parent.end_ns
        }
        expected = max(0, parent.end_ns - parent.start_ns) - len(covered)
        assert self_time_ns(parent, children) == expected
        checked_partial += 0 < expected < parent.end_ns - parent.start_ns
    assert checked_partial > 500  # most draws had children covering part of the span


def test_self_time_per_span_and_per_service_in_a_fan_out_trace() -> None:
    """Self time of every span and of every service is exact for a hand-built fan-out."""
    spans = [
        span("gw", None, 0, 1000, service="gateway"),
        span("o1", "gw", 100, 700, service="orders"),
        span("o2", "gw", 300, 900, service="orders"),  # parallel to o1
        span("db", "o1", 200, 500, service="db"),
        span("db2", "o2", 400, 450, service="db"),
    ]
    tree = build_tree(spans)
    self_times = {n.span.span_id: n.self_time_ns for n in tree.nodes}
    assert self_times == {
        "gw": 1000 - (900 - 100),
        "o1": 600 - 300,
        "o2": 600 - 50,
        "db": 300,
        "db2": 50,
    }
    assert dict(tree.self_time_by_service_ns) == {"orders": 850, "db": 350, "gateway": 200}
    assert list(tree.self_time_by_service_ns) == ["orders", "db", "gateway"]  # largest first


def test_summary_names_the_root_and_counts_errors() -> None:
    """A trace's summary comes from its root span and covers every span."""
    spans = [
        span("lost", "missing", 5, 1500, service="worker", session_id="s-1"),
        span("root", None, 10, 1000, service="gateway", name="GET /cart"),
        span("c", "root", 20, 30, service="cart", status=StatusCode.ERROR),
    ]
    summary = summarize(build_tree(spans))
    assert summary.trace_id == TRACE
    assert (summary.root_service, summary.root_operation) == ("gateway", "GET /cart")
    assert (summary.start_ns, summary.duration_ns) == (5, 1495)
    assert (summary.span_count, summary.error_count) == (3, 1)
    assert summary.services == ("cart", "gateway", "worker")
    assert summary.session_id == "s-1"


def test_summary_of_a_trace_without_root_uses_its_earliest_orphan() -> None:
    """A trace whose root never arrived is named after its earliest span."""
    spans = [span("b", "missing", 50, 60, name="late"), span("a", "missing", 10, 20, name="early")]
    assert summarize(build_tree(spans)).root_operation == "early"


def test_empty_trace_gives_an_empty_tree() -> None:
    """No spans is an empty tree, not an error."""
    tree = build_tree([])
    assert tree.nodes == ()
    assert tree.duration_ns == 0


def test_very_deep_trace_does_not_hit_the_recursion_limit() -> None:
    """A chain of thousands of nested spans (deep recursion in user code) still builds."""
    depth = 5000
    spans = [
        span(f"{i:05d}", None if i == 0 else f"{i - 1:05d}", i, 2 * depth - i) for i in range(depth)
    ]
    nodes = build_tree(spans).nodes
    assert [n.depth for n in nodes] == list(range(depth))
    assert nodes[-1].self_time_ns == 2
