"""``POST /v1/logs`` on a real server: a stock OpenTelemetry SDK's log exporter
(protobuf, and the same records as OTLP JSON, gzip and deflate) is stored with its
trace link, and bad requests get the status codes ``/v1/traces`` answers."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from support.concurrency import AtOnce
from support.live_server import LiveServer, live_server
from threadline.server.ingest import receiver
from threadline.server.ingest.span_decoder import SpanDecoder
from threadline.server.log_batch import LogQuery, LogRecord

from .otlp_payloads import one_span_request

WAIT_S: Final = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        yield running


def log_with_sdk(processor: Any, service: str) -> tuple[str, str]:
    """Log one WARNING inside a span through the stock SDK; the span's trace and span ids."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(processor)
    logger = logging.getLogger(f"test.logs.{service}")
    logger.propagate = False
    handler = LoggingHandler(level=logging.WARNING, logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("charge") as span:
            logger.info("not exported: below WARNING")
            logger.warning("card declined for order %s", 42, extra={"order.id": "o-42"})
            context = span.get_span_context()
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def assert_stored(record: LogRecord, trace_id: str, span_id: str, service: str) -> None:
    assert record.body == "card declined for order 42"
    assert record.body_kind == "string"
    assert (record.trace_id, record.span_id) == (trace_id, span_id)
    assert record.service_name == service
    assert (record.severity_number, record.severity_text) == (13, "WARN")
    assert record.attributes["order.id"] == "o-42"
    assert record.time_ns > 0
    assert record.observed_ns > 0


def test_the_stock_protobuf_exporter_is_stored_with_its_trace_link(server: LiveServer) -> None:
    """OTLPLogExporter (protobuf over HTTP) is answered 200 and its record stored whole."""
    exporter = OTLPLogExporter(endpoint=server.logs_url)
    trace_id, span_id = log_with_sdk(SimpleLogRecordProcessor(exporter), "payments")
    stored = server.store.logs(LogQuery(trace_id=trace_id))
    assert len(stored) == 1
    assert_stored(stored[0], trace_id, span_id, "payments")


def otlp_json(exporter: InMemoryLogRecordExporter) -> bytes:
    """The exported records as OTLP JSON (lowerCamelCase, hex ids)."""
    document = json_format.MessageToDict(encode_logs(exporter.get_finished_logs()))
    for resource_logs in document["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for field in ("traceId", "spanId"):
                    record[field] = base64.b64decode(record[field]).hex()
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("", lambda b: b), ("gzip", gzip.compress), ("deflate", zlib.compress)],
    ids=["plain", "gzip", "deflate"],
)
def test_the_stock_sdks_records_as_json_are_stored_alike(
    server: LiveServer, encoding: str, compress: Any
) -> None:
    """The same SDK records sent as OTLP JSON (plain, gzip, deflate) are stored as protobuf's."""
    exporter = InMemoryLogRecordExporter()
    trace_id, span_id = log_with_sdk(SimpleLogRecordProcessor(exporter), "checkout")
    headers = {"content-type": "application/json"}
    if encoding:
        headers["content-encoding"] = encoding
    response = httpx.post(
        server.logs_url, content=compress(otlp_json(exporter)), headers=headers, timeout=WAIT_S
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    stored = server.store.logs(LogQuery(trace_id=trace_id))
    assert len(stored) == 1
    assert_stored(stored[0], trace_id, span_id, "checkout")


def one_record(**record: Any) -> bytes:
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]
                    },
                    "scopeLogs": [{"logRecords": [record]}],
                }
            ]
        }
    ).encode()


def test_a_record_with_a_bad_trace_id_is_kept_without_the_link(server: LiveServer) -> None:
    """A trace id that is not hex is no reason to lose the line: it is stored, unlinked."""
    body = one_record(
        traceId="not-a-trace-id", spanId="00f067aa0ba902b7", body={"stringValue": "x"}
    )
    response = httpx.post(
        server.logs_url, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    [stored] = server.store.logs(LogQuery(service="web"))
    assert (stored.trace_id, stored.span_id) == (None, None)
    assert stored.attributes["threadline.unlinked"] == ["trace_id", "span_id"]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {"content-type": "application/json", "content-encoding": "br"}, 415),
        (b"not json", {"content-type": "application/json"}, 400),
        (b"\xff\xff\xff", {"content-type": "application/x-protobuf"}, 400),
        (b"x" * 2048, {"content-type": "application/json"}, 413),
    ],
    ids=["media-type", "encoding", "json", "protobuf", "size"],
)
def test_bad_requests_get_the_traces_endpoints_answers(
    tmp_path: Path, content: bytes, headers: dict[str, str], status: int
) -> None:
    """415, 400 and 413 as on /v1/traces, with a message, and nothing stored."""
    with live_server(tmp_path / "spans.duckdb", max_request_bytes=1024) as server:
        response = httpx.post(server.logs_url, content=content, headers=headers, timeout=WAIT_S)
        assert response.status_code == status
        assert response.content
        assert server.store.logs(LogQuery()) == []


def test_a_burst_past_the_tokens_rate_is_refused_with_retry_after(tmp_path: Path) -> None:
    """The per-token rate covers logs: past it, 429 with Retry-After; what was accepted is kept."""
    with live_server(tmp_path / "spans.duckdb", ingest_rate_per_token=50) as server:
        accepted = 0
        refused: httpx.Response | None = None
        with httpx.Client(timeout=WAIT_S) as client:
            for _ in range(20):  # bounded: 20 requests of 10 records
                response = client.post(
                    server.logs_url,
                    content=_records(10),
                    headers={"content-type": "application/json"},
                )
                if response.status_code == 429:
                    refused = response
                    break
                assert response.status_code == 200, response.text
                accepted += 10
        assert refused is not None
        assert int(refused.headers["retry-after"]) >= 1
        assert len(server.store.logs(LogQuery(limit=1000))) == accepted


def _records(count: int) -> bytes:
    document = json.loads(one_record(body={"stringValue": "burst"}))
    scope = document["resourceLogs"][0]["scopeLogs"][0]
    scope["logRecords"] = [{"body": {"stringValue": f"burst {n}"}} for n in range(count)]
    return json.dumps(document).encode()


def test_a_store_that_cannot_write_answers_503_with_retry_after(tmp_path: Path) -> None:
    """When the store refuses the records the exporter is told to retry, not that it is done."""
    with live_server(tmp_path / "closed.duckdb") as server:
        server.store.close()
        response = httpx.post(
            server.logs_url,
            content=_records(3),
            headers={"content-type": "application/json"},
            timeout=WAIT_S,
        )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "retry later" in response.json()["message"]


def test_concurrent_requests_are_decoded_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log requests arriving together are decoded on one thread, in turn, and all stored.

    Decoding holds the interpreter lock, so more threads decode no faster; each would be
    one more the store's writer waits behind to take the lock back after every statement
    (``docs/performance.md``, "One decoding thread").
    """
    watched = AtOnce(receiver.decode_logs)
    monkeypatch.setattr(receiver, "decode_logs", watched)
    exporter = InMemoryLogRecordExporter()
    log_with_sdk(SimpleLogRecordProcessor(exporter), "payments")
    body = encode_logs(exporter.get_finished_logs()).SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    with live_server(tmp_path / "spans.duckdb") as running_server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(
                        running_server.logs_url, content=body, headers=headers, timeout=WAIT_S
                    ),
                    range(8),
                )
            )
        assert [answer.status_code for answer in answers] == [200] * 8
        assert watched.most == 1
        stored = running_server.store.logs(LogQuery(limit=100))
    assert len(stored) == 8


def test_one_worker_decodes_logs_and_spans_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``workers = 1`` log and span requests arriving together share the one decoding
    thread: never two decodings at once beside the writer, and every request stored."""
    watched = AtOnce(receiver.decode_logs)
    monkeypatch.setattr(receiver, "decode_logs", watched)
    span_decode = watched.also(SpanDecoder.decode)
    # A function, so that it binds to each decoder as the method it replaces did.
    monkeypatch.setattr(SpanDecoder, "decode", lambda *args: span_decode(*args))
    exporter = InMemoryLogRecordExporter()
    log_with_sdk(SimpleLogRecordProcessor(exporter), "payments")
    logs_body = encode_logs(exporter.get_finished_logs()).SerializeToString()
    spans_body = one_span_request().SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    with live_server(tmp_path / "spans.duckdb", workers=1) as running_server:
        posts = [(running_server.logs_url, logs_body), (running_server.traces_url, spans_body)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda n: httpx.post(
                        posts[n % 2][0], content=posts[n % 2][1], headers=headers, timeout=WAIT_S
                    ),
                    range(8),
                )
            )
        assert [answer.status_code for answer in answers] == [200] * 8
        assert watched.most == 1
        assert len(running_server.store.logs(LogQuery(limit=100))) == 4
