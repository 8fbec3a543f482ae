"""``GET /api/traces/{id}`` on a real server: a span that failed without an exception
event has its error origin described by the ERROR line it logged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord
from threadline.server.model import SpanEvent, StatusCode

MS: Final = 1_000_000
T0: Final = 1_700_000_000_000 * MS
LOGGED: Final = "7a" * 16
RAISED: Final = "7b" * 16


def line(trace_id: str, span_id: str, at_ms: int, body: str, severity: int) -> LogRecord:
    return LogRecord(
        time_ns=T0 + at_ms * MS, observed_ns=T0 + at_ms * MS, trace_id=trace_id,
        span_id=span_id, service_name="payments", severity_number=severity,
        severity_text="ERROR" if severity >= 17 else "WARN", body=body,
    )  # fmt: skip


def failing_trace(trace_id: str, **charge: Any) -> list[Any]:
    return [
        span_record(trace_id, "00000000000000a1", None, "checkout", "POST /checkout", T0,
                    T0 + 100 * MS, status=StatusCode.ERROR, status_message="HTTP 502"),
        span_record(trace_id, "00000000000000a2", "00000000000000a1", "payments", "charge",
                    T0 + 10 * MS, T0 + 90 * MS, status=StatusCode.ERROR,
                    status_message="HTTP 500", **charge),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("origin-logs") / "spans.duckdb") as running:
        raised = SpanEvent(
            "exception",
            T0 + 50 * MS,
            {"exception.type": "CardDeclined", "exception.message": "issuer said 51"},
        )
        spans = failing_trace(LOGGED) + failing_trace(RAISED, events=(raised,))
        lines = [
            line(LOGGED, "00000000000000a2", 40, "card declined: issuer said 51", 17),
            line(LOGGED, "00000000000000a2", 60, "slow issuer", 13),
            line(RAISED, "00000000000000a2", 55, "charge failed", 17),
        ]
        running.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        running.store.write_logs(LogBatch.from_records(lines)).result(timeout=30)
        yield running


def origin_of(server: LiveServer, trace_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.api_url}/traces/{trace_id}", timeout=30)
    assert response.status_code == 200, response.text
    origin: dict[str, Any] = response.json()["errors"]["origin"]
    return origin


def test_the_error_line_is_the_origins_message(server: LiveServer) -> None:
    """No exception event on the failed span: its ERROR line, not "HTTP 500", says why."""
    origin = origin_of(server, LOGGED)
    assert origin["span_id"] == "00000000000000a2"
    assert origin["message"] == "card declined: issuer said 51"
    assert origin["message_source"] == "log"
    assert origin["error_at_ns"] == T0 + 40 * MS


def test_an_exception_event_still_comes_first(server: LiveServer) -> None:
    """A recorded exception describes the origin even when the span also logged an error."""
    origin = origin_of(server, RAISED)
    assert (origin["exception_type"], origin["message"]) == ("CardDeclined", "issuer said 51")
    assert origin["message_source"] == "exception"
