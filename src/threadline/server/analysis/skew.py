"""Clock-skew adjustment: put spans recorded on another host's clock back in their parent.

Each service stamps its spans with its own host's clock. When that clock is off, a
server span can appear to start before the client span that called it, or to end
after it, and the waterfall shows an effect before its cause. Like Jaeger's
clock-skew adjuster we repair this from the one thing we know for certain: a
*synchronous* call happens inside its caller's window.

- A child that shares its parent's clock (``clocks.same_clock``: the same host,
  the same process, a call over loopback, or — when the spans record none of
  these — the same service) is never shifted on its own; it moves with its
  ancestor. A whole fleet on one machine is therefore never adjusted.
- A child on **another** clock on a synchronous hop (anything but a message hop,
  see ``is_message_hop``, and not a span that carries links) that sticks out of its
  parent's window is shifted so that the network latency is split evenly around it:
  its start becomes ``parent.start + (parent.duration - child.duration) // 2``.
  A child longer than its parent says nothing about the clocks (the caller gave up,
  or the call was detached) and is left alone, as in Jaeger.
- An asynchronous child (message consumer, child of a producer, or a span with
  links) may legitimately end long after its parent and is not shifted for that.
  It cannot start before its parent started, though: if it does, it is moved just
  enough to start with its parent, since how long the message waited is unknown.
- A shift moves the whole subtree. A descendant on yet another clock is then
  judged against its already-adjusted parent, with its own shift replacing the
  inherited one, because it runs on its own clock.

Span and event times move together. Orphans and roots have no reference point and
are never shifted.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.clocks import same_clock
from threadline.server.analysis.tree import SpanTree, build_tree, deduplicate
from threadline.server.model import SpanEvent, SpanKind, SpanRecord


class SkewReason(enum.StrEnum):
    """Why a span was moved."""

    # A synchronous child on another clock stuck out of its caller; centred in it.
    CENTRED_IN_PARENT = "centred in parent"
    # An asynchronous child on another clock started before its parent; starts with it now.
    STARTED_BEFORE_PARENT = "started before parent"
    # The span is in the subtree of a moved span and shares its clock.
    MOVED_WITH_ANCESTOR = "moved with ancestor"


@dataclass(frozen=True, slots=True)
class SkewAdjustment:
    """One moved span: by how much (added to every time of the span) and why.

    ``origin_span_id`` is the span whose hop was out of place: the span itself, or
    for ``MOVED_WITH_ANCESTOR`` the ancestor it moved with.
    """

    span_id: str
    shift_ns: int
    reason: SkewReason
    origin_span_id: str


@dataclass(frozen=True, slots=True)
class SkewResult:
    """The trace's spans, deduplicated, in the order given, with times adjusted.

    ``tree``: their tree when no span moved (the walk built it; ``assembly.fix_up``
    takes it instead of building the same one again), else ``None``.
    """

    spans: tuple[SpanRecord, ...]
    adjustments: tuple[SkewAdjustment, ...]
    tree: SpanTree | None = None


# Bound once: Python 3.11 reads a member off its enum class in ~65 ns, a global in ~7,
# and these are read for every hop of every trace a ranking walks.
_PRODUCER: Final = SpanKind.PRODUCER
_CONSUMER: Final = SpanKind.CONSUMER


def is_message_hop(parent: SpanRecord, child: SpanRecord) -> bool:
    """True when ``child`` handles a message ``parent`` sent (PRODUCER → CONSUMER style)."""
    return parent.kind is _PRODUCER or child.kind is _CONSUMER


def is_async_hop(parent: SpanRecord, child: SpanRecord) -> bool:
    """True when ``parent`` need not wait for ``child``: a message hop or a linked span."""
    return is_message_hop(parent, child) or bool(child.links)


def hop_shift_ns(parent: SpanRecord, child: SpanRecord) -> tuple[int, SkewReason | None]:
    """The shift that puts ``child`` (on another clock) in ``parent``'s window, and why.

    ``(0, None)`` when the child already fits, or when its position says nothing
    about the clocks.
    """
    if is_async_hop(parent, child):
        if child.start_ns < parent.start_ns:
            return parent.start_ns - child.start_ns, SkewReason.STARTED_BEFORE_PARENT
        return 0, None
    if child.duration_ns > parent.duration_ns:
        return 0, None
    if parent.start_ns <= child.start_ns and child.end_ns <= parent.end_ns:
        return 0, None
    # Split the latency evenly between request and response, as Jaeger does.
    latency = (parent.duration_ns - child.duration_ns) // 2
    return parent.start_ns + latency - child.start_ns, SkewReason.CENTRED_IN_PARENT


def adjust_clock_skew(spans: Iterable[SpanRecord]) -> SkewResult:
    """``spans`` with every out-of-place hop between two clocks moved into its parent's window."""
    unique = deduplicate(spans)
    adjusted: dict[str, SpanRecord] = {}
    # span id -> (shift, origin span id) that its children on the same clock inherit
    shifts: dict[str, tuple[int, str]] = {}
    adjustments: list[SkewAdjustment] = []

    tree = build_tree(unique)
    # Depth-first pre-order: every parent is adjusted before its children are judged.
    for node in tree.nodes:
        span = node.span
        parent = adjusted.get(span.parent_span_id or "") if node.depth > 0 else None
        shift, origin, reason = 0, span.span_id, None
        if parent is not None:
            inherited, inherited_origin = shifts[parent.span_id]
            shift, reason = hop_shift_ns(parent, span)
            # Whose clock the span read decides only when one reading would move it:
            # most hops fit and their parent stayed, and the clock test is the dearer.
            if (inherited or shift) and same_clock(parent, span):
                shift, origin = inherited, inherited_origin
                reason = SkewReason.MOVED_WITH_ANCESTOR if shift else None
        shifts[span.span_id] = (shift, origin)
        adjusted[span.span_id] = shifted(span, shift)
        if shift and reason is not None:
            adjustments.append(SkewAdjustment(span.span_id, shift, reason, origin))

    return SkewResult(
        spans=tuple(adjusted[span.span_id] for span in unique),
        adjustments=tuple(adjustments),
        # Every shift comes with its reason, so no adjustment means no span moved.
        tree=None if adjustments else tree,
    )


def shifted(span: SpanRecord, shift_ns: int) -> SpanRecord:
    """``span`` with its start, end and event times moved by ``shift_ns``."""
    if shift_ns == 0:
        return span
    return dataclasses.replace(
        span,
        start_ns=span.start_ns + shift_ns,
        end_ns=span.end_ns + shift_ns,
        events=tuple(
            SpanEvent(event.name, event.time_ns + shift_ns, event.attributes)
            for event in span.events
        ),
    )
