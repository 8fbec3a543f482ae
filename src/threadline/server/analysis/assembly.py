"""From the spans a store returns to a trace fit to show: the ordered fix-ups.

Like Jaeger's adjusters, each fix-up is a small pure function and they run in a
fixed order, because each relies on the one before:

1. **deduplicate** (``tree.deduplicate``): stores do not deduplicate re-sent
   batches, and a duplicate would be shifted or counted twice below;
2. **adjust clock skew** (``skew.adjust_clock_skew``): needs one copy of each span,
   and must run before the tree so that self times and order use corrected times;
3. **build the tree** (``tree.build_tree``): depth-first order, orphans flagged,
   self times;
4. **check completeness** (``check_completeness``): a trace is *incomplete* while
   spans whose parent never arrived are in it, or while it may still be arriving —
   its newest span ended less than a settle window before ``now_ns``. Exporters
   batch spans for a few seconds and services end spans at different times, so a
   trace looked at the moment its root ended is often missing its slowest parts.

``now_ns`` is always passed in: analysis never reads a clock, so results are
reproducible and tests are exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.skew import SkewAdjustment, adjust_clock_skew
from threadline.server.analysis.tree import SpanTree, build_tree, deduplicate
from threadline.server.model import SpanRecord

# How long after its newest span ended a trace may still be receiving spans. The
# OpenTelemetry batch span processor exports every 5 s by default and retries for
# up to 10 s more; 30 s covers both with room for a slow collector in between.
DEFAULT_SETTLE_NS: Final = 30 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class FixedUpTrace:
    """A trace after the fix-ups that change what is shown (steps 1–3)."""

    tree: SpanTree
    duplicates_dropped: int
    skew_adjustments: tuple[SkewAdjustment, ...]


@dataclass(frozen=True, slots=True)
class Completeness:
    """Whether a trace can be taken as final, and if not, why.

    ``missing_parent_ids`` are the parents the orphans wait for. ``settles_at_ns``
    is when the settle window of the newest span ends (0 for an empty trace).
    """

    orphan_span_ids: tuple[str, ...]
    missing_parent_ids: tuple[str, ...]
    settling: bool
    settles_at_ns: int

    @property
    def complete(self) -> bool:
        return not self.orphan_span_ids and not self.settling


@dataclass(frozen=True, slots=True)
class AssembledTrace:
    """A trace after every fix-up, in the order of this module's docstring."""

    tree: SpanTree
    duplicates_dropped: int
    skew_adjustments: tuple[SkewAdjustment, ...]
    completeness: Completeness


def fix_up(spans: Iterable[SpanRecord]) -> FixedUpTrace:
    """Deduplicate, adjust clock skew and build the tree of one trace's spans."""
    received = list(spans)
    unique = deduplicate(received)
    skew = adjust_clock_skew(unique)
    return FixedUpTrace(
        tree=skew.tree if skew.tree is not None else build_tree(skew.spans),
        duplicates_dropped=len(received) - len(unique),
        skew_adjustments=skew.adjustments,
    )


def check_completeness(
    received: Iterable[SpanRecord],
    tree: SpanTree,
    *,
    now_ns: int,
    settle_ns: int = DEFAULT_SETTLE_NS,
) -> Completeness:
    """Orphans in ``tree`` and whether the spans ``received`` may still be arriving.

    The settle window is measured from the newest end time *as received*, before
    skew adjustment: adjustment moves spans onto the root service's clock, which
    is no closer to the server's clock than the span's own.
    """
    if settle_ns < 0:
        raise ValueError(f"settle_ns must be 0 or more, got {settle_ns}")
    newest_end = max((span.end_ns for span in received), default=None)
    orphans = [node.span for node in tree.nodes if node.orphan]
    settles_at = 0 if newest_end is None else newest_end + settle_ns
    return Completeness(
        orphan_span_ids=tuple(span.span_id for span in orphans),
        missing_parent_ids=tuple(sorted({span.parent_span_id or "" for span in orphans})),
        # An empty trace has nothing to show yet: treat it as still arriving.
        settling=newest_end is None or now_ns < settles_at,
        settles_at_ns=settles_at,
    )


def assemble_trace(
    spans: Iterable[SpanRecord], *, now_ns: int, settle_ns: int = DEFAULT_SETTLE_NS
) -> AssembledTrace:
    """Every fix-up, in order, applied to the spans of one trace."""
    received = list(spans)
    fixed = fix_up(received)
    return AssembledTrace(
        tree=fixed.tree,
        duplicates_dropped=fixed.duplicates_dropped,
        skew_adjustments=fixed.skew_adjustments,
        completeness=check_completeness(received, fixed.tree, now_ns=now_ns, settle_ns=settle_ns),
    )
