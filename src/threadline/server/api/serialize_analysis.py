"""Single-trace and journey analyses as JSON: errors, fix-ups, critical path, narrative, compare.

Same conventions as ``serialize``: fields may be added, never renamed or removed;
times are ``*_ns`` plus ISO 8601 ``start`` for people; durations ``*_ms``; shares
and rates are fractions from 0 to 1.
"""

from __future__ import annotations

from threadline.server.analysis.assembly import Completeness
from threadline.server.analysis.compare import Operation, OperationTotals, TraceComparison
from threadline.server.analysis.critical_path import PathShare
from threadline.server.analysis.error_origin import ErrorOrigin, ErrorReport
from threadline.server.analysis.journey_narrative import JourneyNarrative, NarrativeStep
from threadline.server.analysis.skew import SkewAdjustment
from threadline.server.api import serialize
from threadline.server.api.serialize import Json, ms, optional_ms, timing, trace_summary
from threadline.server.api.trace_pages import Page
from threadline.server.query import CriticalPathView, TraceView


def errors(report: ErrorReport) -> Json:
    """Whether the trace failed, where its errors started, and what retries recovered."""
    return {
        "trace_failed": report.trace_failed,
        "origin": None if report.origin is None else error_origin(report.origin),
        "origins": [error_origin(origin) for origin in report.origins],
        "recovered_span_ids": list(report.recovered_span_ids),
        "error_span_count": report.error_span_count,
    }


def error_origin(origin: ErrorOrigin) -> Json:
    return {
        "span_id": origin.span_id,
        "service": origin.service,
        "operation": origin.operation,
        "exception_type": origin.exception_type,
        "message": origin.message,
        "message_source": origin.message_source,
        "error_at_ns": origin.error_at_ns,
        "propagated_by": [
            {"span_id": span.span_id, "service": span.service, "operation": span.operation}
            for span in origin.propagated_by
        ],
    }


def completeness(value: Completeness) -> Json:
    return {
        "complete": value.complete,
        "orphan_span_ids": list(value.orphan_span_ids),
        "missing_parent_ids": list(value.missing_parent_ids),
        "settling": value.settling,
        "settles_at_ns": value.settles_at_ns,
    }


def skew_adjustment(value: SkewAdjustment) -> Json:
    return {
        "span_id": value.span_id,
        "shift_ns": value.shift_ns,
        "shift_ms": ms(value.shift_ns),
        "reason": value.reason.value,
        "origin_span_id": value.origin_span_id,
    }


def critical_path(view: CriticalPathView) -> Json:
    """Segments in time order, each span's own time on the path, and each service's share."""
    path = view.path
    total = path.duration_ns
    return {
        "trace_id": path.trace_id,
        "summary": trace_summary(view.summary),
        "root_span_id": path.root_span_id,
        "start_ns": path.start_ns,
        "end_ns": path.end_ns,
        "duration_ms": ms(total),
        "segments": [
            {
                "kind": segment.kind.value,
                "span_id": segment.span_id,
                "parent_span_id": segment.parent_span_id,
                "service": segment.service,
                "operation": segment.operation,
                "start_ns": segment.start_ns,
                "end_ns": segment.end_ns,
                "duration_ms": ms(segment.duration_ns),
            }
            for segment in path.segments
        ],
        "spans": [
            {
                "span_id": span.span_id,
                "service": span.service,
                "operation": span.operation,
                "duration_ms": ms(span.duration_ns),
                "fraction": span.duration_ns / total if total else 0.0,
            }
            for span in path.spans
        ],
        "shares": [path_share(share) for share in path.shares],
        "top_service": path.top_service,
    }


def path_share(share: PathShare) -> Json:
    return {
        "name": share.name,
        "kind": share.kind,
        "duration_ms": ms(share.duration_ns),
        "fraction": share.fraction,
    }


def narrative(story: JourneyNarrative) -> Json:
    """A journey told as steps, with what held it up and where it stopped."""
    stopped = story.stopped_at
    return {
        "session_id": story.session_id,
        "user_id": story.user_id,
        **timing(story.start_ns, story.duration_ns),
        "think_time_ms": ms(story.think_time_ns),
        "step_count": len(story.steps),
        "failed_step_count": len(story.failed_steps),
        "top_service": story.top_service,
        "stopped_at_trace_id": None if stopped is None else stopped.trace_id,
        "stopped_after_failure": story.stopped_after_failure,
        "service_shares": [path_share(share) for share in story.service_shares],
        "steps": [narrative_step(step) for step in story.steps],
    }


def narrative_step(step: NarrativeStep) -> Json:
    return {
        "trace_id": step.trace_id,
        "entry_service": step.entry_service,
        "entry_operation": step.entry_operation,
        **timing(step.start_ns, step.duration_ns),
        "think_time_ms": optional_ms(step.think_time_ns),
        "failed": step.failed,
        "error": None if step.error is None else error_origin(step.error),
        "services": list(step.services),
        "top_service": step.top_service,
        "critical_path_ms": ms(step.critical_path_ns),
    }


def comparison(result: TraceComparison) -> Json:
    """Trace b (candidate) against trace a (baseline), operation by operation."""
    return {
        "baseline_trace_id": result.baseline_trace_id,
        "candidate_trace_id": result.candidate_trace_id,
        "baseline_duration_ms": ms(result.baseline_duration_ns),
        "candidate_duration_ms": ms(result.candidate_duration_ns),
        "duration_diff_ms": ms(result.duration_diff_ns),
        "operations": [
            {
                **_operation(diff.operation),
                "baseline": _totals(diff.baseline),
                "candidate": _totals(diff.candidate),
                "duration_diff_ms": ms(diff.duration_diff_ns),
                "self_time_diff_ms": ms(diff.self_time_diff_ns),
                "count_diff": diff.count_diff,
            }
            for diff in result.operations
        ],
        "only_in_baseline": [_operation(op) for op in result.only_in_baseline],
        "only_in_candidate": [_operation(op) for op in result.only_in_candidate],
    }


def _operation(operation: Operation) -> Json:
    return {"service": operation.service, "operation": operation.name}


def _totals(totals: OperationTotals) -> Json:
    return {
        "count": totals.count,
        "duration_ms": ms(totals.duration_ns),
        "self_time_ms": ms(totals.self_time_ns),
    }


def trace(view: TraceView, page: Page | None = None) -> Json:
    """The trace answer of the contract, plus errors, completeness and clock-skew fix-ups.

    With ``page`` only that page's spans are listed, and where the next page starts.
    """
    nodes = view.tree.nodes
    adjustments = view.skew_adjustments
    if page is None:
        page = Page(offset=0, end=len(nodes), total=len(nodes))
    shown = nodes[page.offset : page.end]
    if len(shown) < len(nodes):
        # Each page carries the fix-ups of its own spans: in a trace whose clocks
        # disagree everywhere, they are as many as the spans.
        ids = {node.span.span_id for node in shown}
        adjustments = tuple(a for a in adjustments if a.span_id in ids)
    return {
        **serialize.trace(view, shown),
        "span_count": page.total,
        "offset": page.offset,
        "next_offset": page.next_offset,
        "errors": errors(view.errors),
        "complete": view.completeness.complete,
        "completeness": completeness(view.completeness),
        "skew_adjustments": [skew_adjustment(a) for a in adjustments],
        "duplicates_dropped": view.duplicates_dropped,
    }
