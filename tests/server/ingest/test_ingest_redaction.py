"""Redaction at ingest: spans from any OpenTelemetry SDK are stored without personal data."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id

from support.live_server import LiveServer, live_server
from support.redaction_cases import CASES, Case, case_spans
from threadline.redaction import REDACTED_FIELDS
from threadline.server.app import create_app
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ConfigError, ServerSettings

from .otlp_payloads import protobuf_request, to_otlp_json

JWT: Final = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PERSONAL: Final = ("bob@example.com", "4111111111111111", "4111 1111 1111 1111", JWT, "hunter2")
SDK_TIMEOUT_S: Final = 60.0
WAIT_STEP_S: Final = 0.05

# A service instrumented with Threadline's SDK, in its own process (configure() is global).
THREADLINE_SERVICE: Final = """
import threadline
from opentelemetry import trace
threadline.configure(service_name="threadline-shop")
with threadline.journey(session_id="s-9", user_id="bob@example.com"):
    with trace.get_tracer("shop").start_as_current_span("checkout") as span:
        span.set_attribute("customer.note", "ship to bob@example.com")
        span.set_attribute("db.password", "hunter2")
print(format(span.get_span_context().trace_id, "032x"))
threadline.shutdown()
"""


def foreign_sdk_spans() -> list[ReadableSpan]:
    """Spans as a service without Threadline records them: personal data everywhere."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "legacy-billing"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("billing")
    attributes: dict[str, Any] = {
        "user.id": "bob@example.com",
        "session.id": "session-1",
        "url.full": "https://billing.example/pay?token=hunter2&amount=12",
        "http.request.header.authorization": (f"Bearer {JWT}",),
        "payment.pan": "4111 1111 1111 1111",
        "db.password": "hunter2",
        "http.route": "/pay",
        "note": "<b>'; DROP TABLE spans; --</b>",
    }
    with (
        tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER, attributes=attributes),
        tracer.start_as_current_span("charge 4111111111111111") as charge,
    ):
        charge.set_attribute("user.id", "bob@example.com")
        try:
            raise ValueError("card 4111111111111111 declined for bob@example.com")
        except ValueError as exc:
            charge.record_exception(exc)
            charge.set_status(Status(StatusCode.ERROR, "declined for bob@example.com"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def export(server: LiveServer, spans: list[ReadableSpan]) -> list[SpanRecord]:
    exporter = OTLPSpanExporter(endpoint=server.traces_url, timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return server.store.get_trace(format_trace_id(spans[0].context.trace_id))


def everything_stored(record: SpanRecord) -> str:
    return repr(record)


@pytest.fixture(scope="module")
def unredacted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("ingest-unredacted") / "spans.duckdb"
    with live_server(db, redaction=False) as running:
        yield running


def test_foreign_spans_are_stored_without_personal_data(server: LiveServer) -> None:
    """Attributes, URLs, headers, span names, exception events and statuses lose personal data."""
    records = {r.name: r for r in export(server, foreign_sdk_spans())}
    root = records["POST /pay"]
    charge = records["charge ****1111"]
    for record in (root, charge):
        for value in PERSONAL:
            assert value not in everything_stored(record)
    assert root.attributes["url.full"] == "https://billing.example/pay?token=REDACTED&amount=12"
    assert root.attributes["http.request.header.authorization"] == "[REDACTED]"
    assert root.attributes["payment.pan"] == "****1111"
    assert root.attributes["db.password"] == "[REDACTED]"
    assert root.attributes["http.route"] == "/pay"
    assert root.attributes["note"] == "<b>'; DROP TABLE spans; --</b>"
    (exception,) = charge.events
    assert exception.attributes["exception.message"] == (
        "card ****1111 declined for [REDACTED:email]"
    )
    assert charge.status_message == "declined for [REDACTED:email]"
    assert charge.attributes[REDACTED_FIELDS] == [
        "events.exception.exception.message",
        "events.exception.exception.stacktrace",
        "name",
        "status.message",
        "user.id",
    ]


def test_user_id_becomes_a_stable_hash_so_the_journey_groups(server: LiveServer) -> None:
    """An e-mail address used as user.id is stored as one keyed hash on every span."""
    first, second = foreign_sdk_spans(), foreign_sdk_spans()
    spans = first + second
    records = export(server, first) + export(server, second)
    user_ids = {r.user_id for r in records}
    assert len(user_ids) == 1
    (user_id,) = user_ids
    assert user_id is not None
    assert user_id.startswith("h_")
    traces = {format_trace_id(span.context.trace_id) for span in spans}
    found = {t.trace_id for t in server.store.journey_traces(user_id=user_id)}
    assert traces <= found  # the user's journey is found by the hash


def test_otlp_json_is_redacted_like_protobuf(server: LiveServer) -> None:
    """A span sent as OTLP JSON is stored redacted exactly as the same span sent as protobuf."""
    spans = foreign_sdk_spans()
    response = httpx.post(
        server.traces_url,
        content=to_otlp_json(protobuf_request(spans)),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    from_json = {
        r.span_id: r for r in server.store.get_trace(format_trace_id(spans[0].context.trace_id))
    }
    for record in from_json.values():
        for value in PERSONAL:
            assert value not in everything_stored(record)


def test_redaction_off_stores_what_was_sent(unredacted_server: LiveServer) -> None:
    """With redaction=false the server stores spans as sent (the SDK is then the only guard)."""
    records = {r.name: r for r in export(unredacted_server, foreign_sdk_spans())}
    root = records["POST /pay"]
    assert root.attributes["db.password"] == "hunter2"
    assert root.user_id == "bob@example.com"
    assert REDACTED_FIELDS not in root.attributes


def _run_threadline_service(server: LiveServer, tmp_path: Path) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    environ["THREADLINE_ENDPOINT"] = server.url
    completed = subprocess.run(
        [sys.executable, "-c", THREADLINE_SERVICE],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SDK_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


def _stored_trace(server: LiveServer, trace_id: str) -> list[SpanRecord]:
    deadline = time.monotonic() + SDK_TIMEOUT_S
    for _ in range(int(SDK_TIMEOUT_S / WAIT_STEP_S) + 1):
        records = server.store.get_trace(trace_id)
        if records or time.monotonic() > deadline:
            return records
        time.sleep(WAIT_STEP_S)
    return []


def test_threadline_sdk_redacts_before_the_server_sees_it(
    unredacted_server: LiveServer, tmp_path: Path
) -> None:
    """A Threadline service's spans arrive already redacted, even at a server that does not."""
    trace_id = _run_threadline_service(unredacted_server, tmp_path)
    (record,) = _stored_trace(unredacted_server, trace_id)
    assert record.attributes["customer.note"] == "ship to [REDACTED:email]"
    assert record.attributes["db.password"] == "[REDACTED]"
    assert record.user_id is not None
    assert record.user_id.startswith("u_")  # pseudonymised by the SDK's journey
    assert record.attributes[REDACTED_FIELDS] == ["customer.note", "db.password"]


def test_spans_redacted_by_the_sdk_pass_ingest_unchanged(
    server: LiveServer, tmp_path: Path
) -> None:
    """Ingest redaction finds nothing more in an SDK-redacted span: masks and lists stay."""
    trace_id = _run_threadline_service(server, tmp_path)
    (record,) = _stored_trace(server, trace_id)
    assert record.attributes["customer.note"] == "ship to [REDACTED:email]"
    assert record.user_id is not None
    assert record.user_id.startswith("u_")
    assert record.attributes[REDACTED_FIELDS] == ["customer.note", "db.password"]


def test_a_redaction_rule_that_does_not_parse_stops_the_server(tmp_path: Path) -> None:
    """The server refuses to start with a mistyped rule rather than ingest unredacted."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        settings = ServerSettings(db=tmp_path / "spans.duckdb", redaction_keys="user.*=blur")
        with pytest.raises(ConfigError, match="THREADLINE_REDACTION_KEYS"):
            create_app(settings, store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def stored_cases(server: LiveServer) -> dict[str, SpanRecord]:
    """Every case's span, sent in one request by the stock OTLP exporter, as stored."""
    spans = {case.id: case_spans(case) for case in CASES}
    exporter = OTLPSpanExporter(endpoint=server.traces_url, timeout=30)
    try:
        assert exporter.export([s for made in spans.values() for s in made]) is (
            SpanExportResult.SUCCESS
        )
    finally:
        exporter.shutdown()
    stored = {}
    for case_id, (span,) in spans.items():
        (stored[case_id],) = server.store.get_trace(format_trace_id(span.context.trace_id))
    return stored


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_redaction_case_at_ingest(stored_cases: dict[str, SpanRecord], case: Case) -> None:
    """Each case of the shared table is stored without its secrets, keeping the rest."""
    record = stored_cases[case.id]
    assert record.attributes["case.id"] == case.id  # the span arrived, whatever was cut
    stored = json.dumps(dataclasses.asdict(record), ensure_ascii=False, default=str)
    for secret in case.secrets:
        assert secret not in stored
    for kept in case.kept:
        assert kept in stored
    listed = record.attributes.get(REDACTED_FIELDS, [])
    assert set(case.listed) <= set(listed)  # type: ignore[arg-type]
    if case.clean:
        assert REDACTED_FIELDS not in record.attributes
        assert REDACTED_FIELDS not in record.resource
