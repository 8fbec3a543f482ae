"""Trace assembly: the fix-ups in order, and when a trace counts as complete."""

from __future__ import annotations

import pytest

from threadline.server.analysis.assembly import (
    DEFAULT_SETTLE_NS,
    assemble_trace,
    check_completeness,
    fix_up,
)
from threadline.server.analysis.skew import SkewReason
from threadline.server.analysis.tree import build_tree
from threadline.server.model import SpanKind, SpanRecord

TRACE = "a3ce929d0e0e47364bf92f3577b34da6"
SECOND = 1_000_000_000
T0 = 1_750_000_000 * SECOND  # a realistic Unix time, so the settle window is in real units


def span(
    span_id: str,
    parent: str | None,
    start: int,
    end: int,
    *,
    service: str = "web",
    kind: SpanKind = SpanKind.INTERNAL,
) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=f"op-{span_id}",
        kind=kind,
        start_ns=T0 + start,
        end_ns=T0 + end,
    )


def test_missing_parent_keeps_the_orphan_and_marks_the_trace_incomplete() -> None:
    """A span whose parent never arrived is shown, flagged, and the trace is incomplete."""
    spans = [
        span("root", None, 0, 100),
        span("lost", "never-came", 40, 60, service="worker"),
        span("below", "lost", 45, 50, service="worker"),
    ]
    trace = assemble_trace(spans, now_ns=T0 + 3600 * SECOND)
    assert [(n.span.span_id, n.orphan) for n in trace.tree.nodes] == [
        ("root", False),
        ("lost", True),
        ("below", False),
    ]
    assert trace.completeness.orphan_span_ids == ("lost",)
    assert trace.completeness.missing_parent_ids == ("never-came",)
    assert not trace.completeness.settling
    assert not trace.completeness.complete


def test_trace_is_incomplete_until_its_newest_span_has_settled() -> None:
    """A trace is still arriving until the settle window after its newest span has passed."""
    spans = [span("root", None, 0, 2 * SECOND), span("child", "root", SECOND, 3 * SECOND)]
    settled_at = T0 + 3 * SECOND + DEFAULT_SETTLE_NS
    early = assemble_trace(spans, now_ns=settled_at - 1)
    assert early.completeness.settling
    assert not early.completeness.complete
    assert early.completeness.settles_at_ns == settled_at
    late = assemble_trace(spans, now_ns=settled_at)
    assert late.completeness.complete
    assert late.completeness.orphan_span_ids == ()


def test_settle_window_is_configurable() -> None:
    """A shorter settle window makes a trace complete sooner."""
    spans = [span("root", None, 0, SECOND)]
    now = T0 + 6 * SECOND
    assert not assemble_trace(spans, now_ns=now).completeness.complete
    assert assemble_trace(spans, now_ns=now, settle_ns=5 * SECOND).completeness.complete
    with pytest.raises(ValueError, match="settle_ns"):
        assemble_trace(spans, now_ns=now, settle_ns=-1)


def test_settle_window_counts_from_times_as_received_not_as_adjusted() -> None:
    """A span moved back by skew adjustment still holds the trace open by its own clock."""
    spans = [
        span("client", None, 0, 100, kind=SpanKind.CLIENT),
        span(
            "server", "client", 40 * SECOND, 40 * SECOND + 50, service="api", kind=SpanKind.SERVER
        ),
    ]
    trace = assemble_trace(spans, now_ns=T0 + 60 * SECOND)
    assert trace.tree.end_ns == T0 + 100  # shown inside its client
    assert trace.completeness.settling  # but received 20 s before "now"


def test_fix_ups_run_in_order_dedupe_then_skew_then_tree() -> None:
    """Duplicates are dropped before skew is corrected, and the tree uses corrected times."""
    client = span("client", None, 0, 100, kind=SpanKind.CLIENT)
    server = span("server", "client", 2 * SECOND + 20, 2 * SECOND + 80, service="api")
    fixed = fix_up([client, server, server, client])
    assert fixed.duplicates_dropped == 2
    assert [(a.span_id, a.shift_ns, a.reason) for a in fixed.skew_adjustments] == [
        ("server", -2 * SECOND, SkewReason.CENTRED_IN_PARENT)
    ]
    nodes = {n.span.span_id: n for n in fixed.tree.nodes}
    assert (nodes["server"].span.start_ns, nodes["server"].span.end_ns) == (T0 + 20, T0 + 80)
    # Self time is computed after adjustment: the server now covers 60 of the client's 100.
    assert nodes["client"].self_time_ns == 40
    assert fixed.tree.duration_ns == 100


def test_empty_trace_is_not_complete() -> None:
    """No spans yet means nothing to show as final."""
    trace = assemble_trace([], now_ns=T0)
    assert trace.tree.nodes == ()
    assert not trace.completeness.complete


def test_completeness_of_a_prebuilt_tree() -> None:
    """Completeness can be checked on its own, for a tree already built."""
    spans = [span("root", None, 0, 10)]
    result = check_completeness(spans, build_tree(spans), now_ns=T0 + 10, settle_ns=0)
    assert result.complete
