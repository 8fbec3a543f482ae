"""Aggregate answers as JSON: RED metrics, the service map, slow and failing requests,
propagation health, and trace pages.

Same conventions as ``serialize``. Latency percentiles are ``{"p50", "p90", "p95",
"p99"}`` in milliseconds (``null`` when nothing was measured); rates are per
second; error rates, shares and scores are fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from threadline.server.aggregates import (
    OTHER_OPERATION,
    CappedService,
    EdgeStats,
    MessageHop,
    OperationRed,
    Percentiles,
    RedStats,
    ServiceMap,
    ServiceRed,
    TimeWindow,
    UnparentedEntries,
)
from threadline.server.analysis.durations import format_time
from threadline.server.analysis.propagation_health import PropagationReport
from threadline.server.analysis.tail_latency import Explanation, TimeGrowth
from threadline.server.api import cursor
from threadline.server.api.serialize import Json, ms, optional_ms, trace_summary
from threadline.server.query import GROUP_SAMPLE, TracePage

NS_PER_S = 1_000_000_000


def trace_page(page: TracePage) -> Json:
    """The contract's ``{"traces": [...]}`` plus ``next_cursor`` (``null`` on the last page)."""
    return {
        "traces": [trace_summary(summary) for summary in page.traces],
        "next_cursor": None if page.next_cursor is None else cursor.encode(page.next_cursor),
    }


def window(value: TimeWindow) -> Json:
    return {
        "start_ns": value.start_ns,
        "start": format_time(value.start_ns),
        "end_ns": value.end_ns,
        "end": format_time(value.end_ns),
        "duration_ms": ms(value.duration_ns),
    }


def latency(value: Percentiles | None) -> Json | None:
    if value is None:
        return None
    return {"p50": ms(value.p50), "p90": ms(value.p90), "p95": ms(value.p95), "p99": ms(value.p99)}


def red(stats: RedStats, period_ns: int) -> Json:
    """Requests, errors and latency; the request rate is per second of ``period_ns``."""
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "request_rate_per_s": stats.requests * NS_PER_S / period_ns if period_ns else 0.0,
        "latency_ms": latency(stats.latency),
    }


def operations(
    found: list[OperationRed], over: TimeWindow, capped: Sequence[CappedService] = ()
) -> Json:
    """Each operation's RED; ``capped_services`` lists the services past the name cap
    whose later names are counted here, in their ``"other": true`` row."""
    kept = _folded(capped, {(op.service, op.operation) for op in found})
    return {
        "window": window(over),
        "capped_services": [
            {"service": service, "kept_operations": names} for service, names in kept.items()
        ],
        "operations": [
            {
                "service": op.service,
                "operation": op.operation,
                "other": _is_other(op.service, op.operation, kept),
                **red(op.stats, over.duration_ns),
            }
            for op in found
        ],
    }


def _folded(capped: Sequence[CappedService], listed: set[tuple[str, str]]) -> dict[str, int]:
    """Kept names of each capped service whose ``(other)`` row is in the answer.

    A service is marked only where the answer folds names: a finer series answered
    by a scan of the spans lists every name.
    """
    return {c.service: c.kept_operations for c in capped if (c.service, OTHER_OPERATION) in listed}


def _is_other(service: str, operation: str, kept: dict[str, int]) -> bool:
    return operation == OTHER_OPERATION and service in kept


def service_red(value: ServiceRed, capped: Sequence[CappedService] = ()) -> Json:
    """``capped`` is true when the service's operation names reached the cap and the
    answer folds the later ones into its ``"other": true`` row (``kept_operations``
    names are listed on their own)."""
    period = value.window.duration_ns
    bucket = value.bucket_ns or 0
    listed = {(value.service, op.operation) for op in value.operations}
    kept = _folded([c for c in capped if c.service == value.service], listed)
    return {
        "service": value.service,
        "operation": value.operation,
        "window": window(value.window),
        "bucket_ms": optional_ms(value.bucket_ns),
        "capped": bool(kept),
        "kept_operations": kept.get(value.service),
        "totals": red(value.totals, period),
        "operations": [
            {
                "operation": op.operation,
                "other": _is_other(value.service, op.operation, kept),
                **red(op.stats, period),
            }
            for op in value.operations
        ],
        "buckets": [
            {"start_ns": b.start_ns, "start": format_time(b.start_ns), **red(b.stats, bucket)}
            for b in value.buckets
        ],
    }


def service_map(value: ServiceMap) -> Json:
    period = value.window.duration_ns
    return {
        "window": window(value.window),
        "services": [{"name": node.service, **red(node.stats, period)} for node in value.services],
        "edges": [
            {"caller": e.caller, "callee": e.callee, "kind": e.kind.value, **edge(e.stats)}
            for e in value.edges
        ],
        "operation_edges": [
            {
                "caller": e.caller,
                "caller_operation": e.caller_operation,
                "callee": e.callee,
                "callee_operation": e.callee_operation,
                "kind": e.kind.value,
                **edge(e.stats),
            }
            for e in value.operation_edges
        ],
    }


def edge(stats: EdgeStats) -> Json:
    return {
        "calls": stats.calls,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "latency_ms": latency(stats.latency),
        "queue_dwell_ms": latency(stats.queue_dwell),
    }


def slow_requests(found: Explanation, percentile: float) -> Json:
    """Why the slowest requests are slow: growth per operation, over-represented values."""
    groups = found.groups
    threshold = groups.threshold_ns
    return {
        **_groups(found, "slow"),
        "percentile": percentile,
        "threshold_ms": optional_ms(threshold),
        "measure": found.measure,
        # Traces of each group the critical-path times come from (a smaller sample).
        "slow_walked": None if found.walked is None else found.walked[0],
        "baseline_walked": None if found.walked is None else found.walked[1],
        "operations": [_growth(row) for row in found.time_growth],
    }


def error_hotspots(found: Explanation) -> Json:
    """Where failed requests fail, and the values that go with failing."""
    return {
        **_groups(found, "failed"),
        "operations": [
            {
                "service": row.service,
                "operation": row.operation,
                "failed_traces": row.focus_traces,
                "baseline_traces": row.baseline_traces,
                "failed_share": row.focus_share,
                "baseline_share": row.baseline_share,
                "score": row.score,
                "score_margin": row.margin,
                "tied": row.tied,
            }
            for row in found.error_sources
        ],
    }


def _groups(found: Explanation, focus: str) -> Json:
    groups = found.groups
    return {
        "service": groups.target.service,
        "operation": groups.target.operation,
        "window": window(groups.window),
        f"{focus}_traces": groups.focus_traces,
        "baseline_traces": groups.baseline_traces,
        f"{focus}_sample": groups.focus_sample,
        "baseline_sample": groups.baseline_sample,
        # The most traces a group's sample holds: a group that fills it was sampled.
        "sample_limit": GROUP_SAMPLE,
        "example_trace_ids": list(groups.examples),
        "attributes": [
            {
                "key": row.key,
                "value": row.value,
                f"{focus}_traces": row.focus_traces,
                "baseline_traces": row.baseline_traces,
                f"{focus}_share": row.focus_share,
                "baseline_share": row.baseline_share,
                "lift": row.lift,
                "lift_low": row.lift_low,
                "lift_high": row.lift_high,
                "tied": row.tied,
                "score": row.score,
                "p_value": row.p_value,
                "alike": [{"key": key, "value": value} for key, value in row.alike],
            }
            for row in found.attributes
        ],
        "concentrations": [
            {
                "key": row.key,
                "noun": row.noun,
                "count": len(row.values),
                "values": list(row.values),
                f"{focus}_traces": row.focus_traces,
                "baseline_traces": row.baseline_traces,
                f"{focus}_share": row.focus_share,
                "baseline_share": row.baseline_share,
            }
            for row in found.concentrations
        ],
        "not_ranked": [{"key": row.key, "reason": row.reason} for row in found.unranked],
    }


def _growth(row: TimeGrowth) -> Json:
    return {
        "service": row.service,
        "operation": row.operation,
        "slow_traces": row.focus_traces,
        "baseline_traces": row.baseline_traces,
        "growth_ms": ms(row.growth_ns),
        # Null when one trace of a larger group was walked: it says nothing of the spread.
        "growth_margin_ms": None if math.isinf(row.margin_ns) else ms(row.margin_ns),
        "tied": row.tied,
        "slow_self_ms": ms(row.focus_self_ns),
        "baseline_self_ms": ms(row.baseline_self_ns),
        "slow_critical_path_ms": optional_ms(row.focus_path_ns),
        "baseline_critical_path_ms": optional_ms(row.baseline_path_ns),
    }


def propagation(report: PropagationReport) -> Json:
    return {
        "window": window(report.window),
        "healthy": report.healthy,
        "services": [
            {
                "service": service.service,
                "entry_spans": service.entry_spans,
                "unparented": service.unparented,
                "unparented_share": service.share,
                "example_trace_id": service.example_trace_id,
                "operations": [_unparented(entry) for entry in service.operations],
            }
            for service in report.services
        ],
        "orphans": [
            {
                "service": orphans.service,
                "orphan_spans": orphans.orphans,
                "example_trace_id": orphans.example_trace_id,
            }
            for orphans in report.orphans
        ],
        "message_hops": [_hop(hop) for hop in report.message_hops],
    }


def _unparented(entry: UnparentedEntries) -> Json:
    return {
        "operation": entry.operation,
        "entry_spans": entry.entry_spans,
        "unparented": entry.unparented,
        "unparented_share": entry.unparented / entry.entry_spans if entry.entry_spans else 0.0,
        "example_trace_id": entry.example_trace_id,
    }


def _hop(hop: MessageHop) -> Json:
    return {
        "producer": hop.producer,
        "consumer": hop.consumer,
        "destination": hop.destination,
        "messages": hop.messages,
        "broken": hop.broken,
        "broken_share": hop.broken / hop.messages if hop.messages else 0.0,
        "linked": hop.linked,
        "example_producer_trace_id": hop.example_producer_trace_id,
        "example_consumer_trace_id": hop.example_consumer_trace_id,
    }
