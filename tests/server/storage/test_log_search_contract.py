"""The ``Store`` contract for trace search by log records: text, severity, service and
the time window, on every backend; the DuckDB summaries answer as its full scan."""

from __future__ import annotations

from typing import Any, Final

import pytest

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord
from threadline.server.model import TraceQuery
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore

S: Final = 1_000_000_000
T0: Final = 1_700_000_040 * S
WAIT_S: Final = 30.0
DECLINED: Final = "1" * 32
OK_TRACE: Final = "2" * 32
WEB_TRACE: Final = "3" * 32
PERCENT: Final = "4" * 32
UNDERSCORE: Final = "5" * 32
QUOTED: Final = "6" * 32
HTML: Final = "7" * 32
LATE: Final = "8" * 32

# (trace id, start second, service, severity number, body) of each trace's one log line.
LINES: Final = [
    (DECLINED, 0, "payments", 17, "Card Declined by issuer"),
    (OK_TRACE, 1, "payments", 9, "card accepted"),
    (WEB_TRACE, 2, "web", 13, "slow upstream, retrying"),
    (PERCENT, 3, "payments", 9, "discount 50% applied"),
    (UNDERSCORE, 4, "payments", 9, "flag a_b set"),
    (QUOTED, 5, "payments", 9, "user said 'it''s \"fine\"'"),
    (HTML, 6, "web", 9, "<script>alert(1)</script>"),
    (LATE, 100, "payments", 17, "card declined again"),
]


def log(trace_id: str, at_s: int, service: str, severity: int, body: str) -> LogRecord:
    values: dict[str, Any] = {
        "time_ns": T0 + at_s * S,
        "observed_ns": T0 + at_s * S,
        "trace_id": trace_id,
        "span_id": trace_id[:16],
        "service_name": service,
        "severity_number": severity,
        "severity_text": "ERROR" if severity >= 17 else "INFO",
        "body": body,
    }
    return LogRecord(**values)


@pytest.fixture
def logged(store: Store) -> Store:
    """One single-span trace per line of ``LINES``, with the line logged inside it, plus
    a trace that logged nothing."""
    spans = [
        span_record(trace, trace[:16], None, service, "work", T0 + at * S, T0 + at * S + S // 2)
        for trace, at, service, _, _ in LINES
    ]
    spans.append(span_record("9" * 32, "9" * 16, None, "payments", "work", T0, T0 + S))
    store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
    records = [
        log(trace, at, service, severity, body) for trace, at, service, severity, body in LINES
    ]
    store.write_logs(LogBatch.from_records(records)).result(timeout=WAIT_S)
    return store


def found(store: Store, **filters: Any) -> set[str]:
    query = TraceQuery(limit=100, **filters)
    answer = store.search_traces(query)
    if isinstance(store, DuckDBStore):
        # The summaries and the full scan must agree on every log filter.
        assert answer == store.scan.search_traces(query), query
    return {summary.trace_id for summary in answer}


# Log filters and the traces they keep; one store answers them all.
FILTERED: Final[list[tuple[dict[str, Any], set[str]]]] = [
    ({"log_text": "card declined"}, {DECLINED, LATE}),
    ({"log_text": "CARD DECLINED"}, {DECLINED, LATE}),
    ({"log_severity": 17}, {DECLINED, LATE}),
    ({"log_severity": 13}, {DECLINED, WEB_TRACE, LATE}),
    ({"log_service": "web"}, {WEB_TRACE, HTML}),
    ({"log_text": "card", "log_severity": 13}, {DECLINED, LATE}),
    ({"log_text": "card", "log_service": "web"}, set()),
    ({"log_text": "card declined", "end_ns": T0 + 10 * S}, {DECLINED}),
    ({"log_text": "card declined", "start_ns": T0 + 50 * S}, {LATE}),
    ({"log_text": "card", "service": "payments", "log_severity": 9}, {DECLINED, OK_TRACE, LATE}),
]
# Texts with wildcards, quotes and markup, and the traces each finds.
LITERAL: Final[list[tuple[str, set[str]]]] = [
    ("50%", {PERCENT}),
    ("%", {PERCENT}),
    ("a_b", {UNDERSCORE}),
    ("_", {UNDERSCORE}),
    ("it''s \"fine\"", {QUOTED}),
    ("'", {QUOTED}),
    ("<script>", {HTML}),
    ("card%declined", set()),
    ("c_rd", set()),
    ("'; DROP TABLE logs; --", set()),
]


def test_log_filters_keep_the_traces_that_logged_a_matching_record(logged: Store) -> None:
    """A trace is kept when one of its log records meets every log filter given."""
    for filters, expected in FILTERED:
        assert found(logged, **filters) == expected, filters


def test_log_text_matches_literally(logged: Store) -> None:
    """Wildcards, quotes and markup in the text match only themselves."""
    for text, expected in LITERAL:
        assert found(logged, log_text=text) == expected, text
        # The hostile text left the table whole.
        assert found(logged, log_text="card declined") == {DECLINED, LATE}, text


def test_no_log_filter_keeps_traces_without_logs(logged: Store) -> None:
    """Without a log filter the search is unchanged: a trace with no logs is listed."""
    assert "9" * 32 in found(logged)
    assert "9" * 32 not in found(logged, log_severity=1)
