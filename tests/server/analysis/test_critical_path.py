"""Critical path: exact segments, contributions and shares for hand-built traces."""

from __future__ import annotations

import random

import pytest

from threadline import conventions
from threadline.server.analysis.critical_path import (
    CriticalPath,
    PathShare,
    SegmentKind,
    SpanContribution,
    critical_path,
)
from threadline.server.analysis.tree import build_tree
from threadline.server.model import SpanKind, SpanRecord

TRACE = "5b8efff798038103d269b633813fc60c"


def span(
    span_id: str,
    parent: str | None,
    start: int,
    end: int,
    *,
    service: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    destination: str | None = None,
) -> SpanRecord:
    attributes = {} if destination is None else {conventions.MESSAGING_DESTINATION: destination}
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service or span_id,
        name=f"op-{span_id}",
        kind=kind,
        start_ns=start,
        end_ns=end,
        attributes=attributes,
    )


def path_of(spans: list[SpanRecord], *, include_follow_ons: bool = True) -> CriticalPath:
    path = critical_path(build_tree(spans), include_follow_ons=include_follow_ons)
    # Whatever the trace, the segments tile the path exactly: no gap, no overlap.
    position = path.start_ns
    for segment in path.segments:
        assert segment.start_ns == position
        assert segment.end_ns > segment.start_ns
        position = segment.end_ns
    assert position == path.end_ns
    return path


def plain(path: CriticalPath) -> list[tuple[str, str, int, int]]:
    return [(s.kind.value, s.span_id, s.start_ns, s.end_ns) for s in path.segments]


def shares(path: CriticalPath) -> list[tuple[str, str, int]]:
    return [(s.kind, s.name, s.duration_ns) for s in path.shares]


def test_sequential_calls_are_all_on_the_path_with_the_gaps_as_parent_time() -> None:
    """Calls made one after another are each on the path, and the time between is the caller's."""
    path = path_of(
        [
            span("gw", None, 0, 100),
            span("auth", "gw", 10, 30),
            span("orders", "gw", 40, 90),
            span("db", "orders", 50, 70),
        ]
    )
    assert plain(path) == [
        ("span", "gw", 0, 10),
        ("span", "auth", 10, 30),
        ("span", "gw", 30, 40),
        ("span", "orders", 40, 50),
        ("span", "db", 50, 70),
        ("span", "orders", 70, 90),
        ("span", "gw", 90, 100),
    ]
    assert path.spans == (  # largest first, ties by span id
        SpanContribution("gw", "gw", "op-gw", 30),
        SpanContribution("orders", "orders", "op-orders", 30),
        SpanContribution("auth", "auth", "op-auth", 20),
        SpanContribution("db", "db", "op-db", 20),
    )
    assert path.shares == (
        PathShare("gw", "service", 30, 0.3),
        PathShare("orders", "service", 30, 0.3),
        PathShare("auth", "service", 20, 0.2),
        PathShare("db", "service", 20, 0.2),
    )
    assert (path.root_span_id, path.duration_ns) == ("gw", 100)


def test_parallel_fan_out_counts_only_the_branch_that_finished_last() -> None:
    """Of calls running in parallel, only the one the caller waited for longest is on the path."""
    path = path_of(
        [
            span("gw", None, 0, 100),
            span("cart", "gw", 10, 30),
            span("pay", "gw", 20, 60),
            span("ship", "gw", 70, 85),
        ]
    )
    assert plain(path) == [
        ("span", "gw", 0, 20),
        ("span", "pay", 20, 60),
        ("span", "gw", 60, 70),
        ("span", "ship", 70, 85),
        ("span", "gw", 85, 100),
    ]
    assert shares(path) == [("service", "gw", 45), ("service", "pay", 40), ("service", "ship", 15)]
    assert path.top_service == "gw"


def test_overlapping_branches_each_with_children_follow_only_the_longest() -> None:
    """In a fan-out of subtrees, the path follows the longest subtree into its own children."""
    path = path_of(
        [
            span("gw", None, 0, 50),
            span("a", "gw", 5, 40),
            span("a1", "a", 10, 35),
            span("b", "gw", 5, 45),
            span("b1", "b", 6, 20),
            span("b2", "b", 15, 44),  # overlaps b1: b waited for b2 last
        ]
    )
    assert plain(path) == [
        ("span", "gw", 0, 5),
        ("span", "b", 5, 15),
        ("span", "b2", 15, 44),
        ("span", "b", 44, 45),
        ("span", "gw", 45, 50),
    ]


def test_fire_and_forget_child_that_outlives_its_parent_extends_the_path() -> None:
    """Work started and not awaited is on the path when it is what finished the trace last."""
    spans = [
        span("handler", None, 0, 100, service="web"),
        span("query", "handler", 10, 40, service="db"),
        span("email", "handler", 60, 250, service="web"),  # background task, never awaited
    ]
    path = path_of(spans)
    assert plain(path) == [
        ("span", "handler", 0, 10),
        ("span", "query", 10, 40),
        ("span", "handler", 40, 60),
        ("span", "email", 60, 250),
    ]
    assert (path.duration_ns, path.top_service) == (250, "web")
    assert shares(path) == [("service", "web", 220), ("service", "db", 30)]


def test_response_time_view_ignores_follow_ons() -> None:
    """Without follow-ons, the path ends with the root and never enters unawaited work."""
    spans = [
        span("handler", None, 0, 100),
        span("query", "handler", 10, 40),
        span("email", "handler", 60, 250),
    ]
    path = path_of(spans, include_follow_ons=False)
    assert plain(path) == [
        ("span", "handler", 0, 10),
        ("span", "query", 10, 40),
        ("span", "handler", 40, 100),
    ]


def test_response_time_view_keeps_a_server_that_closed_its_span_after_answering() -> None:
    """A SERVER span that ends 2 after its CLIENT span (same clock: the framework closed it
    after writing the response) was awaited: its work is on the response path, clipped to
    the client's end, instead of the client owning the whole wait."""
    spans = [
        span("gw", None, 0, 120, service="gateway", kind=SpanKind.SERVER),
        span("call", "gw", 10, 110, service="gateway", kind=SpanKind.CLIENT),
        span("charge", "call", 12, 112, service="payments", kind=SpanKind.SERVER),
        span("authorize", "charge", 15, 105, service="payments"),
    ]
    path = path_of(spans, include_follow_ons=False)
    assert plain(path) == [
        ("span", "gw", 0, 10),
        ("span", "call", 10, 12),
        ("span", "charge", 12, 15),
        ("span", "authorize", 15, 105),
        ("span", "charge", 105, 110),
        ("span", "gw", 110, 120),
    ]
    # The full view still runs to the last end, through the server span.
    assert path_of(spans).end_ns == 120


def test_follow_on_that_starts_after_its_parent_ended_waits_in_a_segment_of_its_own() -> None:
    """A detached task scheduled after its parent ended shows its start delay as a wait."""
    path = path_of(
        [
            span("handler", None, 0, 100, service="web"),
            span("cleanup", "handler", 150, 200, service="jobs"),
        ]
    )
    assert plain(path) == [
        ("span", "handler", 0, 100),
        ("wait", "cleanup", 100, 150),
        ("span", "cleanup", 150, 200),
    ]
    assert path.segments[1].parent_span_id == "handler"
    assert shares(path) == [("service", "jobs", 100), ("service", "web", 100)]


def test_queue_hop_dwell_is_a_separate_segment_attributed_to_the_destination() -> None:
    """Time a message spent waiting between publish and processing is its own queue segment."""
    path = path_of(
        [
            span("gw", None, 0, 40, service="shop", kind=SpanKind.SERVER),
            span("pub", "gw", 10, 16, service="shop", kind=SpanKind.PRODUCER, destination="orders"),
            span("work", "pub", 26, 60, service="worker", kind=SpanKind.CONSUMER),
            span("stock", "work", 30, 50, service="catalog", kind=SpanKind.CLIENT),
        ]
    )
    assert plain(path) == [
        ("span", "gw", 0, 10),
        ("span", "pub", 10, 16),
        ("queue", "work", 16, 26),
        ("span", "work", 26, 30),
        ("span", "stock", 30, 50),
        ("span", "work", 50, 60),
    ]
    dwell = path.segments[2]
    assert (dwell.kind, dwell.service, dwell.parent_span_id) == (SegmentKind.QUEUE, "orders", "pub")
    assert dwell.duration_ns == 10
    assert shares(path) == [
        ("service", "catalog", 20),
        ("service", "shop", 16),
        ("service", "worker", 14),
        ("queue", "orders", 10),
    ]
    assert [s.fraction for s in path.shares] == pytest.approx([20 / 60, 16 / 60, 14 / 60, 10 / 60])


def test_consumer_that_starts_while_the_producer_runs_has_no_dwell() -> None:
    """A message picked up before the publish call returned adds no queue segment."""
    path = path_of(
        [
            span("pub", None, 0, 20, kind=SpanKind.PRODUCER),
            span("work", "pub", 15, 50, kind=SpanKind.CONSUMER),
        ]
    )
    assert plain(path) == [("span", "pub", 0, 15), ("span", "work", 15, 50)]


def test_queue_hop_inside_a_synchronous_call_reaches_the_trace_end() -> None:
    """A consumer several levels down still ends the path when it is the last thing to finish."""
    path = path_of(
        [
            span("gw", None, 0, 100),
            span("orders", "gw", 10, 90),
            span("pub", "orders", 20, 30, kind=SpanKind.PRODUCER),
            span("work", "pub", 200, 300, kind=SpanKind.CONSUMER),
        ]
    )
    assert plain(path) == [
        ("span", "gw", 0, 10),
        ("span", "orders", 10, 20),
        ("span", "pub", 20, 30),
        ("queue", "work", 30, 200),
        ("span", "work", 200, 300),
    ]
    assert path.segments[3].service == "unnamed queue"


def test_trace_without_its_root_uses_the_earliest_orphan() -> None:
    """When the root never arrived, the path is that of the earliest span left without a parent."""
    path = path_of(
        [
            span("late", "missing", 50, 90),
            span("early", "missing", 10, 40),
            span("child", "early", 20, 30),
        ]
    )
    assert path.root_span_id == "early"
    assert plain(path) == [
        ("span", "early", 10, 20),
        ("span", "child", 20, 30),
        ("span", "early", 30, 40),
    ]


def test_children_ending_together_prefer_the_longest() -> None:
    """Two children ending at the same moment put the longer one on the path."""
    path = path_of([span("p", None, 0, 100), span("x", "p", 40, 80), span("y", "p", 20, 80)])
    assert plain(path)[1] == ("span", "y", 20, 80)


def test_children_sticking_out_before_their_parent_are_clipped() -> None:
    """A child recorded as starting before its parent contributes only its part inside it."""
    path = path_of([span("p", None, 100, 200), span("c", "p", 50, 150)])
    assert plain(path) == [("span", "c", 100, 150), ("span", "p", 150, 200)]


def test_empty_and_single_span_traces() -> None:
    """No spans is an empty path; one span is all its own path."""
    empty = critical_path(build_tree([]))
    assert (empty.root_span_id, empty.segments, empty.top_service) == (None, (), None)
    assert plain(path_of([span("only", None, 5, 25)])) == [("span", "only", 5, 25)]


def test_very_deep_trace_does_not_hit_the_recursion_limit() -> None:
    """A chain of thousands of nested spans has a path through every one of them."""
    depth = 5000
    spans = [
        span(f"{i:05d}", None if i == 0 else f"{i - 1:05d}", i, 2 * depth - i, service="deep")
        for i in range(depth)
    ]
    path = path_of(spans)
    assert len(path.segments) == 2 * depth - 1
    assert path.shares == (PathShare("deep", "service", 2 * depth, 1.0),)


def test_zero_length_child_does_not_split_its_parents_time() -> None:
    """An instantaneous child leaves its parent's time on the path as one segment."""
    path = path_of([span("p", None, 0, 100), span("mark", "p", 50, 50)])
    assert plain(path) == [("span", "p", 0, 100)]


@pytest.mark.parametrize("seed", range(25))
def test_any_trace_gives_a_path_that_tiles_the_root_to_the_trace_end(seed: int) -> None:
    """Random traces mixing kinds, overlaps, follow-ons and clock oddities give a gapless path."""
    rng = random.Random(seed)
    kinds = list(SpanKind)
    spans = [span("s00", None, 0, rng.randint(1, 500), kind=rng.choice(kinds))]
    for i in range(1, 40):
        parent = rng.choice(spans)
        start = parent.start_ns + rng.randint(-20, parent.duration_ns + 50)
        spans.append(
            span(
                f"s{i:02d}",
                parent.span_id,
                start,
                start + rng.randint(0, 300),
                service=rng.choice(["a", "b", "c"]),
                kind=rng.choice(kinds),
            )
        )
    path = path_of(spans)  # checks the segments tile start..end
    ends = {s.span_id: s.end_ns for s in spans}
    assert path.end_ns == max(ends.values())  # every span here descends from the root
    assert sum(share.duration_ns for share in path.shares) == path.duration_ns
