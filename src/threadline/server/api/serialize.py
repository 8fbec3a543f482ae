"""Query values as the JSON documents of the REST API (docs/server.md, "REST API").

Field names are a contract other code reads: fields may be added, never renamed
or removed. Times are Unix epoch nanoseconds (``*_ns``) plus an ISO 8601 UTC
``start`` for people; durations are ``*_ms`` floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from threadline.server.analysis.durations import format_time
from threadline.server.analysis.tree import SpanNode
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanEvent,
    SpanLink,
    StoreCounts,
    TraceSummary,
)
from threadline.server.query import JourneyView, TraceView

Json = dict[str, Any]


def stats(counts: StoreCounts) -> Json:
    return {"spans": counts.spans, "traces": counts.traces, "sessions": counts.sessions}


def services(entries: list[ServiceOperations]) -> Json:
    return {
        "services": [
            {"name": entry.service, "operations": list(entry.operations)} for entry in entries
        ]
    }


def trace_summary(summary: TraceSummary) -> Json:
    return {
        "trace_id": summary.trace_id,
        **timing(summary.start_ns, summary.duration_ns),
        "root_service": summary.root_service,
        "root_operation": summary.root_operation,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "status": "error" if summary.is_error else "ok",
        "services": list(summary.services),
        "session_id": summary.session_id,
        "user_id": summary.user_id,
        "synthetic": summary.synthetic,
    }


def trace(view: TraceView, nodes: Sequence[SpanNode] | None = None) -> Json:
    """The trace with ``nodes`` as its spans (default: all of them)."""
    shown = view.tree.nodes if nodes is None else nodes
    return {
        "trace_id": view.summary.trace_id,
        "summary": trace_summary(view.summary),
        "spans": [span_node(node) for node in shown],
        "self_time_by_service_ms": {
            service: ms(self_ns) for service, self_ns in view.tree.self_time_by_service_ns.items()
        },
    }


def span_node(node: SpanNode) -> Json:
    span = node.span
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "service": span.service_name,
        "name": span.name,
        "kind": span.kind.value,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "duration_ms": ms(span.duration_ns),
        "self_time_ms": ms(node.self_time_ns),
        "depth": node.depth,
        "status": span.status.value,
        "status_message": span.status_message,
        "session_id": span.session_id,
        "user_id": span.user_id,
        "journey_id": span.journey_id,
        "attributes": json_safe_map(span.attributes),
        "resource": json_safe_map(span.resource),
        "events": [event(e) for e in span.events],
        "links": [link(ln) for ln in span.links],
        "orphan": node.orphan,
    }


def event(value: SpanEvent) -> Json:
    return {
        "name": value.name,
        "time_ns": value.time_ns,
        "attributes": json_safe_map(value.attributes),
    }


def link(value: SpanLink) -> Json:
    return {
        "trace_id": value.trace_id,
        "span_id": value.span_id,
        "attributes": json_safe_map(value.attributes),
    }


def journey_summary(summary: JourneySummary) -> Json:
    return {
        "session_id": summary.session_id,
        "user_id": summary.user_id,
        **timing(summary.start_ns, summary.duration_ns),
        "trace_count": summary.trace_count,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "services": list(summary.services),
    }


def journey_list(summaries: list[JourneySummary]) -> Json:
    return {"journeys": [journey_summary(summary) for summary in summaries]}


def journey(view: JourneyView) -> Json:
    """A journey; each trace also carries ``gap_ms``, the think time before it."""
    return {
        "session_id": view.session_id,
        "user_id": view.user_id,
        "traces": [
            {
                **trace_summary(step.trace),
                "gap_ms": optional_ms(step.gap_ns),
            }
            for step in view.steps
        ],
    }


def timing(start_ns: int, duration_ns: int) -> Json:
    """When something started (``start_ns`` and ISO ``start``) and how long it took."""
    return {"start_ns": start_ns, "start": format_time(start_ns), "duration_ms": ms(duration_ns)}


def ms(ns: float) -> float:
    """Nanoseconds as milliseconds, to the microsecond: finer is noise to a reader.

    Percentiles interpolate, so ``ns`` may be fractional.
    """
    return round(ns / 1_000_000, 3)


def optional_ms(ns: float | None) -> float | None:
    """``ms(ns)``, or None (JSON ``null``) for a duration that was not measured."""
    return None if ns is None else ms(ns)


def json_safe_map(values: Mapping[str, object]) -> Json:
    return {str(key): json_safe(value) for key, value in values.items()}


def json_safe(value: object) -> Any:
    """``value`` with NaN and infinities as strings: strict JSON has no such numbers.

    OTLP double attributes may legitimately be NaN; left as floats they would make
    the whole response fail to encode.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return json_safe_map(value)
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
