"""Journeys for funnel-step SLO tests: sessions that check out, and some that pay."""

from __future__ import annotations

from typing import Final

from support.spans import span_record
from threadline.server.model import SpanRecord

S: Final = 1_000_000_000
MINUTE: Final = 60 * S
HOUR: Final = 60 * MINUTE

PAY_CONVERSION: Final = {
    "name": "pay-conversion",
    "service": "shop",
    "operation": "POST /checkout",
    "reaches": "POST /pay",
    "objective": 0.99,
    "window": "7d",
    "indicator": "journey",
}


def checkouts(
    at_ns: int, sessions: int, paying: int, tag: str, service: str = "shop"
) -> list[SpanRecord]:
    """``sessions`` sessions that check out at ``service`` at ``at_ns`` (a second
    apart); the first ``paying`` pay 20 s later, each in a trace of its own. ``tag`` (a
    hex digit) keeps trace ids apart."""
    spans = []
    for n in range(sessions):
        start = at_ns + n * S
        session = f"{tag}-{n}"
        spans.append(
            span_record(
                f"{tag}{2 * n + 1:031x}", "c1", None, service, "POST /checkout",
                start, start + 50_000_000, session_id=session,
            )
        )  # fmt: skip
        if n < paying:
            spans.append(
                span_record(
                    f"{tag}{2 * n + 2:031x}", "p1", None, service, "POST /pay",
                    start + 20 * S, start + 20 * S + 50_000_000, session_id=session,
                )
            )  # fmt: skip
    return spans
