"""``GET /api/traces`` with log filters on a real server: traces found by what they
logged (text, severity, service), hostile text matched literally, bad values 400."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord

S: Final = 1_000_000_000
T0: Final = 1_700_000_000 * S
DECLINED: Final = "a1" * 16
ACCEPTED: Final = "b2" * 16
MARKUP: Final = "c3" * 16
SILENT: Final = "d4" * 16


def record(trace_id: str, body: str, severity: int, service: str = "payments") -> LogRecord:
    values: dict[str, Any] = {
        "time_ns": T0,
        "observed_ns": T0,
        "trace_id": trace_id,
        "span_id": trace_id[:16],
        "service_name": service,
        "severity_number": severity,
        "severity_text": "ERROR" if severity >= 17 else "INFO",
        "body": body,
    }
    return LogRecord(**values)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("trace-log-search") / "spans.duckdb"
    with live_server(db) as running:
        spans = [
            span_record(trace, trace[:16], None, "checkout", "POST /pay", T0 - S, T0 + S)
            for trace in (DECLINED, ACCEPTED, MARKUP, SILENT)
        ]
        running.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        records = [
            record(DECLINED, "card declined: insufficient funds", 17),
            record(ACCEPTED, "card accepted", 9),
            record(MARKUP, "<b>50%_off</b> 'promo'", 13, service="web"),
        ]
        running.store.write_logs(LogBatch.from_records(records)).result(timeout=30)
        yield running


def get(server: LiveServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.api_url}/traces", params=params, timeout=30)


def found(server: LiveServer, **params: str) -> set[str]:
    response = get(server, **params)
    assert response.status_code == 200, response.text
    return {row["trace_id"] for row in response.json()["traces"]}


def test_traces_are_found_by_what_they_logged(server: LiveServer) -> None:
    """log_text, log_severity (names or numbers) and log_service each narrow the list."""
    assert found(server) == {DECLINED, ACCEPTED, MARKUP, SILENT}
    assert found(server, log_text="Card Declined") == {DECLINED}
    assert found(server, log_severity="error") == {DECLINED}
    assert found(server, log_severity="warn") == {DECLINED, MARKUP}
    assert found(server, log_severity="9") == {DECLINED, ACCEPTED, MARKUP}
    assert found(server, log_service="web") == {MARKUP}
    assert found(server, log_text="card", log_severity="info", log_service="payments") == {
        DECLINED,
        ACCEPTED,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50%_off", {MARKUP}),
        ("%", {MARKUP}),
        ("_", {MARKUP}),
        ("'promo'", {MARKUP}),
        ("<b>", {MARKUP}),
        ("c%d", set()),
        ("card_declined", set()),
    ],
)
def test_hostile_log_text_matches_only_literally(
    server: LiveServer, text: str, expected: set[str]
) -> None:
    assert found(server, log_text=text) == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [({"log_severity": "loud"}, "log_severity"), ({"log_text": "x" * 2000}, "log_text")],
)
def test_bad_log_filters_are_400_naming_them(
    server: LiveServer, params: dict[str, str], named: str
) -> None:
    response = get(server, **params)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_the_log_filters_are_described_in_openapi(server: LiveServer) -> None:
    described = server.app.openapi()["paths"]["/api/traces"]["get"]
    names = {p["name"] for p in described["parameters"]}
    assert names >= {"log_text", "log_severity", "log_service"}
