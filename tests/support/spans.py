"""One builder for the ``SpanRecord``s tests store and read back.

Times are Unix epoch nanoseconds; every other field a test cares about is a keyword.
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import SpanKind, SpanRecord


def span_record(
    trace_id: str,
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    start_ns: int,
    end_ns: int,
    *,
    kind: SpanKind | None = None,
    **fields: Any,
) -> SpanRecord:
    """A span of ``service``; without ``kind``, a root is SERVER and a child CLIENT."""
    if kind is None:
        kind = SpanKind.SERVER if parent is None else SpanKind.CLIENT
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        **fields,
    )
