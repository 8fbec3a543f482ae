"""The critical path: the chain of work that determined a trace's end-to-end latency.

Shorten anything on the path and the trace finishes sooner; shorten anything off it
and nothing changes. The algorithm is Jaeger's (from Uber's critical path work): walk
*backwards* from the end. Inside a span, the child that finished last before the
current point (the *last finishing child*) is what the span was waiting for: the
span's own time from that child's end up to the point is on the path, then the walk
goes into the child, and continues in the span from the child's start. With no
child left, the span's own time back to its start is on the path, and the walk
returns to its parent at that start::

    time   0    10   20   30   40   50   60   70   80   90   100
    gw     |=================================================|  0..100  GET /checkout
    cart        |=========|                                     10..30
    pay              |===================|                      20..60  parallel to cart
    ship                                      |======|          70..85
    path   |gw-------|pay----------------|gw--|ship--|gw-----|

From 100 the last child to finish is ``ship`` (85): ``gw`` owns 85..100, ``ship``
owns 70..85. From 70 it is ``pay`` (60), not ``cart``: ``cart`` ran in parallel
and finished earlier, so only the longest branch of a fan-out counts; ``gw`` owns
60..70 and 0..20.

**Follow-ons.** A child its parent did not wait for — a message consumer (PRODUCER
→ CONSUMER hop) or any child that ends after its parent (fire-and-forget work) — is
never a last finishing child inside its parent's window. But the trace is not over
until it is: the path runs to the trace's *last* end, the latest end anywhere in
the root's subtree. A span whose subtree ends after the span itself is entered at
that end and the walk goes into the child whose subtree ends there. Time between a
parent's end and its follow-on's start is a segment of its own: ``QUEUE`` (dwell
in the messaging destination, attributed to the destination) for a message hop,
``WAIT`` (waiting to be scheduled, attributed to the child's service) otherwise::

    time   0         10        20        30        40        50        60
    gw     |=======================================|                        0..40  responds at 40
    pub              |=====|                                                10..16 PRODUCER, orders
    work                             |=================================|    26..60 CONSUMER
    path   |gw-------|pub--|queue----|work-----------------------------|

The consumer ends last (60), so the path runs to 60 through it: ``work`` owns
26..60, the message waited in ``orders`` 16..26, ``pub`` owns 10..16, ``gw``
0..10. What ``gw`` did after publishing (16..40) did not delay the end.

Pass ``include_follow_ons=False`` for the response-time view instead (Jaeger's):
the path ends at the root's end and follow-ons are ignored. A SERVER span under a
CLIENT span is not a follow-on there even when it ends a little after the client
span: the client waited for its response, and server frameworks close their span
after the response is written (on one clock, with no skew to correct). Such a
child is clipped to its caller's end, as Jaeger clips overflowing children.

The segments of a path are contiguous and add up to exactly its duration. Only the
root's subtree is walked: an orphan's link to the root is unknown. Children that
start before their parent (clock skew left after adjustment) are clipped to it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from threadline import conventions
from threadline.server.analysis.skew import is_message_hop
from threadline.server.analysis.tree import SpanTree, children_by_parent, root_span
from threadline.server.model import SpanKind, SpanRecord

# What a share of the path is attributed to: a service, or a messaging destination.
ShareKind = Literal["service", "queue"]


class SegmentKind(enum.StrEnum):
    SPAN = "span"  # a span's own time
    QUEUE = "queue"  # a message waiting in a destination between producer and consumer
    WAIT = "wait"  # a non-message follow-on waiting to start after its parent ended


# Bound once: Python 3.11 reads a member off its enum class in ~65 ns, a global in ~7,
# and these are read for every span of every path a ranking walks.
_OWN_TIME: Final = SegmentKind.SPAN
_QUEUE: Final = SegmentKind.QUEUE
_CLIENT: Final = SpanKind.CLIENT
_SERVER: Final = SpanKind.SERVER


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One stretch of the path, in time order.

    For ``SPAN``, ``span_id``/``service``/``operation`` are the span whose own time
    it is. For ``QUEUE`` and ``WAIT``, ``span_id`` is the span that waited to start
    (the consumer) and ``parent_span_id`` its parent (the producer); a ``QUEUE``'s
    ``service`` is the messaging destination.
    """

    kind: SegmentKind
    span_id: str
    service: str
    operation: str
    start_ns: int
    end_ns: int
    parent_span_id: str | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class SpanContribution:
    """The total own time of one span on the path."""

    span_id: str
    service: str
    operation: str
    duration_ns: int


@dataclass(frozen=True, slots=True)
class PathShare:
    """Time on the path of one service (own and wait time) or one queue (dwell)."""

    name: str
    kind: ShareKind
    duration_ns: int
    fraction: float


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """A trace's critical path: its segments in time order.

    Contributions and shares are read from the segments when asked for (largest first,
    ties by name): a ranking over many traces reads only the segments, and building
    both for each trace cost it an eighth of its walk.
    """

    trace_id: str
    root_span_id: str | None
    start_ns: int
    end_ns: int
    segments: tuple[PathSegment, ...]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def spans(self) -> tuple[SpanContribution, ...]:
        """Each span's own time on the path."""
        return _contributions(self.segments)

    @property
    def shares(self) -> tuple[PathShare, ...]:
        """Each service's and queue's time on the path."""
        return _shares(self.segments, self.duration_ns)

    @property
    def top_service(self) -> str | None:
        """The service with the most time on the path (queues excluded)."""
        return next((share.name for share in self.shares if share.kind == "service"), None)


@dataclass(slots=True)
class _Frame:
    """A span being walked: the point reached, its floor, and its blocking children."""

    span: SpanRecord
    point: int
    floor: int
    blocking: list[SpanRecord]  # latest end first
    next_blocking: int = 0
    waiting_on: SpanRecord | None = None


def critical_path(tree: SpanTree, *, include_follow_ons: bool = True) -> CriticalPath:
    """The critical path of ``tree`` from its root's start to its last end."""
    root = root_span(tree)
    if root is None:
        return CriticalPath(tree.trace_id, None, 0, 0, ())
    children = children_by_parent(tree)
    if not include_follow_ons:
        children = _awaited_calls_clipped(tree, children)
    reach = _subtree_ends(tree, children, include_follow_ons)
    segments = _merged(reversed(_walk_back(root, children, reach)))
    return CriticalPath(
        trace_id=tree.trace_id,
        root_span_id=root.span_id,
        start_ns=root.start_ns,
        end_ns=reach[root.span_id],
        segments=segments,
    )


def _awaited_calls_clipped(
    tree: SpanTree, children: Mapping[str, list[SpanRecord]]
) -> dict[str, list[SpanRecord]]:
    """``children`` with each SERVER child of a CLIENT span ended no later than its caller."""
    spans = {node.span.span_id: node.span for node in tree.nodes}
    clipped: dict[str, list[SpanRecord]] = {}
    for parent_id, kids in children.items():
        parent = spans[parent_id]
        clipped[parent_id] = [
            dataclasses.replace(child, end_ns=parent.end_ns)
            if parent.kind is _CLIENT
            and child.kind is _SERVER
            and child.start_ns < parent.end_ns < child.end_ns
            else child
            for child in kids
        ]
    return clipped


def _subtree_ends(
    tree: SpanTree, children: Mapping[str, list[SpanRecord]], include_follow_ons: bool
) -> dict[str, int]:
    """Each span's latest end anywhere in its subtree (its own end without follow-ons)."""
    reach: dict[str, int] = {}
    for node in reversed(tree.nodes):  # reverse pre-order: children before their parent
        span = node.span
        reach[span.span_id] = span.end_ns
        if include_follow_ons:
            for child in children.get(span.span_id, ()):
                reach[span.span_id] = max(reach[span.span_id], reach[child.span_id])
    return reach


def _walk_back(
    root: SpanRecord, children: Mapping[str, list[SpanRecord]], reach: Mapping[str, int]
) -> list[PathSegment]:
    """Path segments from the root's last end back to its start (latest first)."""

    def frame(span: SpanRecord, point: int, floor: int) -> _Frame:
        blocking = [
            c
            for c in children.get(span.span_id, ())
            if c.end_ns <= span.end_ns and not is_message_hop(span, c)
        ]
        blocking.sort(key=lambda c: (-c.end_ns, c.start_ns, c.span_id))
        return _Frame(span, point, max(span.start_ns, floor), blocking)

    pieces: list[PathSegment] = []
    stack = [frame(root, reach[root.span_id], root.start_ns)]
    returned_at = root.start_ns  # where the walk left the last span it finished
    while stack:
        top = stack[-1]
        span = top.span
        if top.waiting_on is not None:
            waited, top.waiting_on = top.waiting_on, None
            resume = max(min(returned_at, span.end_ns), top.floor)
            if returned_at > resume:  # a follow-on that started after its parent ended
                pieces.append(_gap(span, waited, resume, returned_at))
            top.point = resume
        elif top.point > span.end_ns:
            # Past the span's own end: follow the child whose subtree ends here.
            ending_here = [c for c in children[span.span_id] if reach[c.span_id] == top.point]
            ends_last = min(ending_here, key=lambda c: (c.start_ns, c.span_id))
            top.waiting_on = ends_last
            stack.append(frame(ends_last, top.point, top.floor))
            continue
        last = _last_finishing_child(top)
        if last is not None:
            _append_own(pieces, span, last.end_ns, top.point)
            top.waiting_on = last
            stack.append(frame(last, last.end_ns, top.floor))
            continue
        _append_own(pieces, span, top.floor, top.point)
        returned_at = top.floor
        stack.pop()
    return pieces


def _last_finishing_child(top: _Frame) -> SpanRecord | None:
    """The blocking child that ended last at or before ``top.point``, if any ended in range."""
    # The point only moves back, so children ending after it are skipped for good.
    while top.next_blocking < len(top.blocking):
        child = top.blocking[top.next_blocking]
        top.next_blocking += 1
        if child.end_ns > top.point:
            continue
        if child.end_ns <= top.floor:
            return None  # this and every later candidate ended before the span's window
        return child
    return None


def _append_own(pieces: list[PathSegment], span: SpanRecord, start: int, end: int) -> None:
    if end > start:
        pieces.append(
            PathSegment(_OWN_TIME, span.span_id, span.service_name, span.name, start, end)
        )


def _gap(parent: SpanRecord, child: SpanRecord, start: int, end: int) -> PathSegment:
    if is_message_hop(parent, child):
        return PathSegment(
            SegmentKind.QUEUE,
            child.span_id,
            _destination(parent, child),
            f"{parent.name} → {child.name}",
            start,
            end,
            parent.span_id,
        )
    return PathSegment(
        SegmentKind.WAIT, child.span_id, child.service_name, child.name, start, end, parent.span_id
    )


def _destination(producer: SpanRecord, consumer: SpanRecord) -> str:
    """The messaging destination of a hop, named by whichever side recorded it."""
    for key in (conventions.MESSAGING_DESTINATION, conventions.MESSAGING_SYSTEM):
        for span in (producer, consumer):
            value = span.attributes.get(key)
            if value:
                return str(value)
    return "unnamed queue"


def _merged(pieces: Iterable[PathSegment]) -> tuple[PathSegment, ...]:
    """Pieces in time order, joined where one span's own time is split by a zero-length child."""
    merged: list[PathSegment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last and (last.kind, last.span_id, last.end_ns) == (
            piece.kind,
            piece.span_id,
            piece.start_ns,
        ):
            merged[-1] = dataclasses.replace(last, end_ns=piece.end_ns)
        else:
            merged.append(piece)
    return tuple(merged)


def _contributions(segments: tuple[PathSegment, ...]) -> tuple[SpanContribution, ...]:
    totals: dict[str, int] = defaultdict(int)
    names: dict[str, tuple[str, str]] = {}
    for segment in segments:
        if segment.kind is _OWN_TIME:
            totals[segment.span_id] += segment.duration_ns
            names[segment.span_id] = (segment.service, segment.operation)
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(SpanContribution(sid, *names[sid], ns) for sid, ns in ordered)


def _shares(segments: tuple[PathSegment, ...], total_ns: int) -> tuple[PathShare, ...]:
    totals: dict[tuple[str, ShareKind], int] = defaultdict(int)
    for segment in segments:
        kind: ShareKind = "queue" if segment.kind is _QUEUE else "service"
        totals[(segment.service, kind)] += segment.duration_ns
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(
        PathShare(name, kind, ns, ns / total_ns if total_ns else 0.0)
        for (name, kind), ns in ordered
    )
