"""The span tree of one trace, and where its time went (self time).

``build_tree`` turns the spans of a trace, as the store returns them, into the
order a waterfall shows: depth first, siblings by start time. On the way it

- keeps one span per span id (stores do not deduplicate re-sent batches);
- marks *orphans*: spans whose parent never arrived (dropped, sampled out, or
  still in flight). They are shown as roots rather than hidden, because the
  slow or failing part of a trace is often exactly the part whose parent is lost;
- breaks parent cycles (only corrupt or hostile data has them) by treating the
  earliest span of the cycle as an orphan, so every span is shown exactly once.

Self time is the part of a span's duration not covered by any of its children.
Children may run in parallel and overlap, and may outlive their parent (async
work), so it is the span's duration minus the *union* of its children's
intervals clipped to the span::

    parent   |==============================|   0..30
    child A       |=========|                    5..15
    child B           |===========|              9..21   (overlaps A)
    child C                              |=====|  28..34 (outlives parent)
    covered       |===============|      |==|   5..21 and 28..30 → 18
    self     |====|               |======|       30 - 18 = 12

The self time of a service is the sum of the self times of its spans: where the
trace's wall-clock time was spent inside that service's own code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from threadline.conventions import JOURNEY_SYNTHETIC, SYNTHETIC_TRUE
from threadline.server.model import SpanRecord, TraceSummary


@dataclass(frozen=True, slots=True)
class SpanNode:
    """One span in its place in the tree."""

    span: SpanRecord
    depth: int
    orphan: bool
    self_time_ns: int


@dataclass(frozen=True, slots=True)
class SpanTree:
    """The spans of one trace in depth-first order, siblings by start time."""

    trace_id: str
    nodes: tuple[SpanNode, ...]
    self_time_by_service_ns: Mapping[str, int]

    @property
    def start_ns(self) -> int:
        return min((n.span.start_ns for n in self.nodes), default=0)

    @property
    def end_ns(self) -> int:
        return max((n.span.end_ns for n in self.nodes), default=0)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def deduplicate(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """One span per ``(trace_id, span_id)``, the first copy seen, order kept."""
    seen: set[tuple[str, str]] = set()
    unique: list[SpanRecord] = []
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key not in seen:
            seen.add(key)
            unique.append(span)
    return unique


def self_time_ns(span: SpanRecord, children: Iterable[SpanRecord]) -> int:
    """``span``'s duration minus the union of its children's intervals within it."""
    low, high = span.start_ns, span.end_ns
    covered = 0
    run_start = run_end = 0
    in_run = False
    # Sorted by their own start: clipping to the span keeps that order, and the union's
    # length does not depend on how ties are ordered.
    for start, end in sorted([(child.start_ns, child.end_ns) for child in children]):
        if start < low:
            start = low
        if end > high:
            end = high
        if end <= start:
            continue  # entirely outside the span, or zero length
        if in_run and start <= run_end:
            if end > run_end:
                run_end = end
            continue
        if in_run:
            covered += run_end - run_start
        run_start, run_end, in_run = start, end, True
    if in_run:
        covered += run_end - run_start
    return max(0, high - low - covered)


def build_tree(spans: Sequence[SpanRecord]) -> SpanTree:
    """The tree of one trace's spans (see the module docstring for the rules)."""
    unique = sorted(deduplicate(spans), key=_by_start)
    by_id = {span.span_id: span for span in unique}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    roots: list[SpanRecord] = []
    for span in unique:
        parent = span.parent_span_id
        if parent and parent in by_id and parent != span.span_id:
            children[parent].append(span)  # already in start order: `unique` is sorted
        else:
            roots.append(span)

    nodes: list[SpanNode] = []
    placed: set[str] = set()

    def place_subtree(root: SpanRecord) -> None:
        # Iterative: a trace of thousands of nested spans must not hit the recursion limit.
        stack = [(root, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in placed:
                continue
            placed.add(span.span_id)
            kids = children.get(span.span_id)
            nodes.append(
                SpanNode(
                    span=span,
                    depth=depth,
                    orphan=depth == 0 and bool(span.parent_span_id),
                    # A leaf (most spans) is all self time: nothing to sort, nothing to push.
                    self_time_ns=self_time_ns(span, kids) if kids else span.duration_ns,
                )
            )
            if kids:
                stack.extend([(kid, depth + 1) for kid in reversed(kids)])

    for root in roots:
        place_subtree(root)
    # Whatever is still unplaced hangs off a parent cycle; enter each cycle at its earliest span.
    for span in unique:
        if span.span_id not in placed:
            place_subtree(span)

    return SpanTree(
        trace_id=unique[0].trace_id if unique else "",
        nodes=tuple(nodes),
        self_time_by_service_ns=self_time_by_service(nodes),
    )


def self_time_by_service(nodes: Iterable[SpanNode]) -> dict[str, int]:
    """Total self time per service, largest first."""
    totals: dict[str, int] = defaultdict(int)
    for node in nodes:
        totals[node.span.service_name] += node.self_time_ns
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def summarize(tree: SpanTree) -> TraceSummary:
    """The list-row summary of a trace, from its tree.

    The root is the earliest span without a parent; a trace whose root never
    arrived is named after its earliest orphan.
    """
    spans = [node.span for node in tree.nodes]
    root = root_span(tree)
    by_start = sorted(spans, key=_by_start)
    return TraceSummary(
        trace_id=tree.trace_id,
        start_ns=tree.start_ns,
        duration_ns=tree.duration_ns,
        root_service=root.service_name if root else "",
        root_operation=root.name if root else "",
        span_count=len(spans),
        error_count=sum(1 for span in spans if span.is_error),
        services=tuple(sorted({span.service_name for span in spans})),
        session_id=next((s.session_id for s in by_start if s.session_id), None),
        user_id=next((s.user_id for s in by_start if s.user_id), None),
        synthetic=any(
            str(span.attributes.get(JOURNEY_SYNTHETIC, "")).lower() == SYNTHETIC_TRUE
            for span in spans
        ),
    )


def root_span(tree: SpanTree) -> SpanRecord | None:
    """The earliest span without a parent, else (root never arrived) the earliest orphan."""
    true_roots = [node.span for node in tree.nodes if node.depth == 0 and not node.orphan]
    return min(true_roots or (node.span for node in tree.nodes), key=_by_start, default=None)


def children_by_parent(tree: SpanTree) -> dict[str, list[SpanRecord]]:
    """Each span's children as placed in ``tree`` (in start order), keyed by parent span id.

    Orphans and cycle entry points are nobody's children here, exactly as the tree shows them.
    """
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    for node in tree.nodes:
        if node.depth > 0 and node.span.parent_span_id:
            children[node.span.parent_span_id].append(node.span)
    return dict(children)


def _by_start(span: SpanRecord) -> tuple[int, int, str]:
    # End time and id break ties so the order never depends on how the store returned rows.
    return (span.start_ns, span.end_ns, span.span_id)
