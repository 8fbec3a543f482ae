"""A moderate tracing workload with every shape the rollups count, and the SLO reads of it.

A few hundred traces over twenty minutes: web "GET /checkout" → CLIENT → pay
"charge" → "db query", with retried calls, failed charges (``region=eu``), a slow
database shard (``db.shard=7``), synthetic journeys, sessions, message hops to mail
(in the same trace, in another one linked, or broken), orphans and entries whose
caller's context was lost. Shuffled into batches so children often arrive before
their parents. Used to compare the ClickHouse store with the DuckDB store.
"""

from __future__ import annotations

import random
from typing import Final

from support.spans import span_record
from threadline.conventions import MESSAGING_DESTINATION, MESSAGING_MESSAGE_ID
from threadline.server.aggregates import TimeWindow
from threadline.server.model import SpanKind, SpanLink, SpanRecord, StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.slos import Indicator

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE  # a whole minute
TRACES: Final = 300
WINDOW: Final = TimeWindow(T0, T0 + 20 * MINUTE)
NOW: Final = T0 + 21 * MINUTE
WINDOWS: Final = (5 * MINUTE, 30 * MINUTE, 60 * MINUTE)
WAIT_S: Final = 60.0


def trace(n: int) -> list[SpanRecord]:
    """web GET /checkout → CLIENT → pay charge → db query; the variations by ``n``."""
    trace = f"{n + 1:032x}"
    start = T0 + (n * 20 * MINUTE) // TRACES + n * MS
    slow, failed = n % 7 == 0, n % 11 == 0
    marked = {"journey.synthetic": "true"} if n % 13 == 0 else {}
    session = {"session_id": f"s{n % 40}"} if n % 3 else {}
    db_ms = 400 + n % 9 if slow else 20 + n % 5
    spans = [
        span_record(
            trace,
            "a1",
            None,
            "web",
            "GET /checkout",
            start,
            start + (db_ms + 40) * MS,
            attributes={**marked, "http.route": "/checkout"},
            **session,
        ),
        span_record(
            trace,
            "a2",
            "a1",
            "web",
            "POST /pay",
            start + MS,
            start + (db_ms + 30) * MS,
            attributes={**marked, **({"http.request.resend_count": 1} if n % 5 == 1 else {})},
            **session,
        ),
        span_record(
            trace,
            "a3",
            "a2",
            "pay",
            "charge",
            start + 2 * MS,
            start + (db_ms + 20) * MS,
            kind=SpanKind.SERVER,
            attributes={**marked, "region": "eu" if failed else f"r{n % 3}"},
            **({"status": StatusCode.ERROR} if failed else {}),
        ),
        span_record(
            trace,
            "a4",
            "a3",
            "pay",
            "db query",
            start + 3 * MS,
            start + (db_ms + 3) * MS,
            kind=SpanKind.INTERNAL,
            attributes={**marked, "db.shard": "7" if slow else str(n % 6)},
        ),
    ]
    if n % 4 == 0:  # a message to mail: same trace, another one linked, or one broken
        message = {MESSAGING_MESSAGE_ID: f"m{n}", MESSAGING_DESTINATION: "mail"}
        spans.append(
            span_record(
                trace,
                "p1",
                "a1",
                "web",
                "publish",
                start + 4 * MS,
                start + 5 * MS,
                kind=SpanKind.PRODUCER,
                attributes=message,
            )
        )
        other = f"{n + 1:016x}{'c' * 16}"
        consumer_trace, parent, links = {
            0: (trace, "p1", ()),
            1: (other, None, (SpanLink(trace, "p1"),)),
        }.get(n // 4 % 3, (other, None, ()))
        spans.append(
            span_record(
                consumer_trace,
                "c1",
                parent,
                "mail",
                "send",
                start + 9 * MS,
                start + 19 * MS,
                kind=SpanKind.CONSUMER,
                attributes=message,
                links=links,
            )
        )
    if n % 17 == 0:  # a span whose parent never arrives
        spans.append(span_record(trace, "o1", "gone", "web", "render", start, start + MS))
    if n % 19 == 0:  # payments entered with no parent: the caller's context was lost
        lost = f"{n + 1:016x}{'d' * 16}"
        spans.append(
            span_record(
                lost, "l1", None, "pay", "charge", start, start + 30 * MS, kind=SpanKind.SERVER
            )
        )
    return spans


def batches() -> list[list[SpanRecord]]:
    spans = [span for n in range(TRACES) for span in trace(n)]
    random.Random(15).shuffle(spans)
    return [spans[i : i + 97] for i in range(0, len(spans), 97)]


QUERIES: Final = (
    IndicatorQuery(Indicator.ERRORS, "web", "GET /checkout"),
    IndicatorQuery(Indicator.ERRORS, "pay", include_synthetic=True),
    IndicatorQuery(Indicator.LATENCY, "web", "GET /checkout", threshold_ns=300 * MS),
    IndicatorQuery(Indicator.LATENCY, "pay", "charge", threshold_ns=100 * MS),
    IndicatorQuery(Indicator.EDGE, "web", callee="pay"),
    IndicatorQuery(Indicator.EDGE, "web", callee="pay", threshold_ns=200 * MS),
    IndicatorQuery(Indicator.EDGE, "web", callee="mail", include_synthetic=True),
    IndicatorQuery(Indicator.JOURNEY, "web", "GET /checkout"),
    IndicatorQuery(Indicator.JOURNEY, "pay"),
    IndicatorQuery(Indicator.JOURNEY, "pay", include_synthetic=True),
    # A funnel step: journeys that checked out once and came back to check out again.
    IndicatorQuery(Indicator.JOURNEY, "web", "GET /checkout", reaches="GET /checkout"),
)


def slo_answers(store: Store) -> list[object]:
    answers: list[object] = []
    for query in QUERIES:
        answers.append(store.slo_counts(query, NOW, WINDOWS))
        answers.append(store.slo_examples(query, WINDOW, limit=7))
    answers.append(store.retry_counts("web", "pay", NOW, WINDOWS))
    return answers
