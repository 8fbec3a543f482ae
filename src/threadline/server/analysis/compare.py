"""Two traces side by side: what one did that the other did not, and where time moved.

The usual question is "why was this request slow when that one was fast?". Spans
are matched by *operation* — service and span name — since span ids never repeat
across traces, and the same operation may run several times in one trace (a loop
of queries, a retry). Per operation and per side we count the spans and sum their
durations and self times (``tree.self_time_ns``); the difference is the
candidate's sum minus the baseline's, so positive means slower in the candidate.

Operations are listed by the size of the duration difference, largest first; an
operation present on one side only is listed too (with zero on the other side)
and also named in ``only_in_baseline`` / ``only_in_candidate``. Duration sums
count nested time once per level (a parent includes its children); self-time
sums do not, and add up to each trace's total self time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from threadline.server.analysis.tree import SpanTree


@dataclass(frozen=True, slots=True, order=True)
class Operation:
    service: str
    name: str


@dataclass(frozen=True, slots=True)
class OperationTotals:
    """The spans of one operation on one side: how many, and their summed times."""

    count: int = 0
    duration_ns: int = 0
    self_time_ns: int = 0


@dataclass(frozen=True, slots=True)
class OperationDiff:
    operation: Operation
    baseline: OperationTotals
    candidate: OperationTotals

    @property
    def duration_diff_ns(self) -> int:
        """Candidate minus baseline: positive when the candidate spent longer."""
        return self.candidate.duration_ns - self.baseline.duration_ns

    @property
    def self_time_diff_ns(self) -> int:
        return self.candidate.self_time_ns - self.baseline.self_time_ns

    @property
    def count_diff(self) -> int:
        return self.candidate.count - self.baseline.count


@dataclass(frozen=True, slots=True)
class TraceComparison:
    """A baseline and a candidate trace compared operation by operation."""

    baseline_trace_id: str
    candidate_trace_id: str
    baseline_duration_ns: int
    candidate_duration_ns: int
    operations: tuple[OperationDiff, ...]
    only_in_baseline: tuple[Operation, ...]
    only_in_candidate: tuple[Operation, ...]

    @property
    def duration_diff_ns(self) -> int:
        return self.candidate_duration_ns - self.baseline_duration_ns


def compare_traces(baseline: SpanTree, candidate: SpanTree) -> TraceComparison:
    """``candidate`` compared with ``baseline`` (see the module docstring)."""
    before = operation_totals(baseline)
    after = operation_totals(candidate)
    empty = OperationTotals()
    diffs = [
        OperationDiff(op, before.get(op, empty), after.get(op, empty))
        for op in set(before) | set(after)
    ]
    # Largest absolute difference first; ties in a stable, readable order.
    diffs.sort(key=lambda d: (-abs(d.duration_diff_ns), d.operation))
    return TraceComparison(
        baseline_trace_id=baseline.trace_id,
        candidate_trace_id=candidate.trace_id,
        baseline_duration_ns=baseline.duration_ns,
        candidate_duration_ns=candidate.duration_ns,
        operations=tuple(diffs),
        only_in_baseline=tuple(sorted(set(before) - set(after))),
        only_in_candidate=tuple(sorted(set(after) - set(before))),
    )


def operation_totals(tree: SpanTree) -> dict[Operation, OperationTotals]:
    """Count, summed duration and summed self time of each operation in ``tree``."""
    counts: dict[Operation, list[int]] = defaultdict(lambda: [0, 0, 0])
    for node in tree.nodes:
        totals = counts[Operation(node.span.service_name, node.span.name)]
        totals[0] += 1
        totals[1] += node.span.duration_ns
        totals[2] += node.self_time_ns
    return {op: OperationTotals(*totals) for op, totals in counts.items()}
