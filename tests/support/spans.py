"""One builder for the ``SpanRecord``s tests store and read back.

Times are Unix epoch nanoseconds; every other field a test cares about is a keyword.
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import SpanKind, SpanRecord, StatusCode


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


def payment_call(
    trace_id: str, start_ns: int, *, failed: bool = False, user: str | None = None
) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT "POST /charge" → payments SERVER "charge" (80 ms),
    failing there when ``failed``; ``user`` (and a session of theirs) on web's spans."""
    ms = 1_000_000
    who: dict[str, Any] = {"user_id": user, "session_id": f"s-{user}"} if user else {}
    status: dict[str, Any] = {"status": StatusCode.ERROR} if failed else {}
    return [
        span_record(trace_id, "a1", None, "web", "GET /pay", start_ns, start_ns + 100 * ms, **who),
        span_record(
            trace_id,
            "a2",
            "a1",
            "web",
            "POST /charge",
            start_ns + ms,
            start_ns + 90 * ms,
            kind=SpanKind.CLIENT,
            **who,
        ),
        span_record(
            trace_id,
            "a3",
            "a2",
            "payments",
            "charge",
            start_ns + 2 * ms,
            start_ns + 82 * ms,
            kind=SpanKind.SERVER,
            **status,
        ),
    ]
