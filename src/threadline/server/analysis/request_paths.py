"""The critical paths a slow-request explanation walks, and their time per operation.

Tail causes by the critical path (``tail_latency``) walk the whole traces of the first
traces of each group's sample: the path of the target's slowest request in each, up
to its response (``request_path``), and each operation's own time on those paths,
summed with its square per trace for the means' margins (``path_totals``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import Target
from threadline.server.analysis.critical_path import CriticalPath, SegmentKind, critical_path
from threadline.server.analysis.tree import SpanTree, build_tree, children_by_parent, root_span
from threadline.server.model import SpanKind, SpanRecord

OperationKey = tuple[str, str]
# An operation's time summed over a group's sample, its square summed per trace, and
# the traces in the sample.
Sums = tuple[float, float, int]


@dataclass(frozen=True, slots=True)
class PathTotals:
    """Critical-path time per (service, operation) summed over a sample of each group,
    and the sum of its square per trace (ns², for the means' margins)."""

    focus_traces: int
    baseline_traces: int
    focus_ns: Mapping[OperationKey, int]
    baseline_ns: Mapping[OperationKey, int]
    focus_squares: Mapping[OperationKey, float]
    baseline_squares: Mapping[OperationKey, float]

    def sums(self, key: OperationKey) -> tuple[Sums, Sums]:
        """The operation's (time, sum of squares, traces walked) in each group."""
        return (
            (self.focus_ns.get(key, 0), self.focus_squares.get(key, 0.0), self.focus_traces),
            (
                self.baseline_ns.get(key, 0),
                self.baseline_squares.get(key, 0.0),
                self.baseline_traces,
            ),
        )


def path_totals(focus: Iterable[CriticalPath], baseline: Iterable[CriticalPath]) -> PathTotals:
    """Each operation's own time on the critical paths of two samples of traces."""
    return time_totals(map(path_time, focus), map(path_time, baseline))


def time_totals(
    focus: Iterable[Mapping[OperationKey, int]], baseline: Iterable[Mapping[OperationKey, int]]
) -> PathTotals:
    """``path_totals`` of each trace's ``path_time``: walked by the read, or kept by a
    store that walked the trace when it was stored."""
    focus_ns, focus_squares, focus_count = _summed(focus)
    baseline_ns, baseline_squares, baseline_count = _summed(baseline)
    return PathTotals(
        focus_count, baseline_count, focus_ns, baseline_ns, focus_squares, baseline_squares
    )


def path_time(path: CriticalPath) -> dict[OperationKey, int]:
    """Each operation's own time on ``path``: queue dwell and scheduling waits belong to
    no operation's own code."""
    own: dict[OperationKey, int] = {}
    for segment in path.segments:
        if segment.kind is _OWN_TIME:
            key = (segment.service, segment.operation)
            own[key] = own.get(key, 0) + segment.duration_ns
    return own


def request_path(tree: SpanTree, target: Target) -> CriticalPath | None:
    """The critical path of the target's slowest request in ``tree``, up to its response.

    The request is the slowest entry span (SERVER or CONSUMER) of the target's
    service and operation, or the root without a service; the path covers it and
    everything under it, and ends when it ends: work it did not wait for (a
    message consumed later) did not make *this* request slow. ``None`` when the
    trace holds no such request.
    """
    if target.service is None:
        entry = root_span(tree)
    else:
        entries = [
            node.span
            for node in tree.nodes
            if node.span.service_name == target.service
            and target.operation in (None, node.span.name)
            and (node.span.kind in _ENTRY_KINDS or node.depth == 0)
        ]
        entry = max(entries, key=lambda span: (span.duration_ns, span.span_id), default=None)
    if entry is None:
        return None
    spans = _subtree(tree, entry)
    # Every span under the request (the usual case: the trace's root): the same set
    # builds the same tree, so the one in hand is walked.
    whole = tree if len(spans) == len(tree.nodes) else build_tree(spans)
    return critical_path(whole, include_follow_ons=False)


_ENTRY_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)
# Bound once, as ``critical_path`` binds its kinds: read for every segment of every path.
_OWN_TIME: Final = SegmentKind.SPAN


def _subtree(tree: SpanTree, top: SpanRecord) -> list[SpanRecord]:
    """``top`` and its descendants; ``top`` becomes the root of a tree built from them."""
    children = children_by_parent(tree)
    spans = [top]
    pending = [top.span_id]
    while pending:
        for child in children.get(pending.pop(), ()):
            spans.append(child)
            pending.append(child.span_id)
    return spans


def _summed(
    times: Iterable[Mapping[OperationKey, int]],
) -> tuple[dict[OperationKey, int], dict[OperationKey, float], int]:
    """Per operation, its own time over the traces and the sum of its square per trace."""
    totals: dict[OperationKey, int] = defaultdict(int)
    squares: dict[OperationKey, int] = defaultdict(int)
    count = 0
    for own in times:
        count += 1
        for key, spent in own.items():
            totals[key] += spent
            squares[key] += spent * spent
    return dict(totals), {key: float(value) for key, value in squares.items()}, count
