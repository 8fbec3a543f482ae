"""One builder for the ``SpanRecord``s tests store and read back.

Times are Unix epoch nanoseconds; every other field a test cares about is a keyword.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

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


MINUTE_NS: Final = 60_000_000_000


def tenth_slow_tenth_failed(service: str, count: int, now_ns: int) -> list[SpanRecord]:
    """``count`` one-span requests of ``service`` spread over the 50 minutes ending five
    minutes before ``now_ns``: every tenth slow (300–360 ms against 10–16, with
    ``region=eu``), another tenth failed. The slow and failed groups are a tenth each,
    so ``count`` sets how large the samples of why-slow and error hotspots get; the
    times vary within each group, as a sample's margins need."""
    spans = []
    for n in range(count):
        start = now_ns - 55 * MINUTE_NS + n * (50 * MINUTE_NS // count)
        slow = n % 10 == 0
        spread = n % 7
        spans.append(
            span_record(
                # Ids spread like real ones (pages show their first characters).
                hashlib.md5(f"{service}-{n}".encode()).hexdigest(),
                f"{n + 1:016x}",
                None,
                service,
                "GET /items",
                start,
                start + (300 + 10 * spread if slow else 10 + spread) * 1_000_000,
                status=StatusCode.ERROR if n % 10 == 5 else StatusCode.UNSET,
                attributes={"region": "eu" if slow else "us"},
            )
        )
    return spans
