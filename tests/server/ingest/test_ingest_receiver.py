"""POST /v1/traces on a real server and a real DuckDB store, as OTLP senders use it."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from support.live_server import LiveServer, live_server
from threadline.server.model import SpanRecord

from .conftest import gzip_of_zeros
from .otlp_payloads import (
    HAND_WRITTEN_JSON,
    HOSTILE_VALUES,
    by_span_id,
    expected_record,
    one_span_request,
    protobuf_request,
    sdk_spans,
    to_otlp_json,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SMALL_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("ingest-small") / "spans.duckdb"
    # A ratio limit far away, so the size limit is what these tests meet (the ratio
    # limit has its own tests in test_limits.py).
    with live_server(db, max_request_bytes=SMALL_LIMIT, max_decompression_ratio=100_000) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


def export(server: LiveServer, spans: list[ReadableSpan], compression: Compression) -> None:
    exporter = OTLPSpanExporter(endpoint=server.traces_url, compression=compression, timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def stored(server: LiveServer, spans: list[ReadableSpan]) -> dict[str, SpanRecord]:
    trace_ids = {expected_record(s).trace_id for s in spans}
    return by_span_id([r for t in sorted(trace_ids) for r in server.store.get_trace(t)])


def fresh_request() -> ExportTraceServiceRequest:
    """A valid one-span request with new ids, so repeated sends never collide."""
    return one_span_request(trace_id=os.urandom(15) + b"\x01", span_id=os.urandom(7) + b"\x01")


def rpc_status(response: httpx.Response) -> status_pb2.Status:
    """The google.rpc.Status of an error answer, decoded per its content type."""
    status = status_pb2.Status()
    if response.headers["content-type"] == PROTOBUF:
        status.ParseFromString(response.content)
    else:
        json_format.Parse(response.text, status)
    return status


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate]
)
def test_stock_otlp_exporter_spans_are_stored_before_the_ack(
    server: LiveServer, compression: Compression
) -> None:
    """Spans from the stock OpenTelemetry exporter are readable as soon as it gets its 200."""
    spans = sdk_spans(service=f"checkout-{compression.value}")
    export(server, spans, compression)
    assert stored(server, spans) == by_span_id([expected_record(s) for s in spans])


def stored_from_otlp_json(
    db: Path, spans: list[ReadableSpan], client: httpx.Client
) -> tuple[httpx.Response, dict[str, SpanRecord]]:
    """Send ``spans`` as OTLP JSON to a fresh server over ``db``: its answer and what it stored."""
    with live_server(db) as json_server:
        response = client.post(
            json_server.traces_url,
            content=to_otlp_json(protobuf_request(spans)),
            headers={"content-type": JSON},
        )
        assert response.status_code == 200
        return response, stored(json_server, spans)


def test_same_spans_as_otlp_json_are_stored_identically(
    server: LiveServer, tmp_path: Path, client: httpx.Client
) -> None:
    """The spans sent as OTLP JSON read back exactly as when the exporter sent protobuf."""
    spans = sdk_spans(service="checkout-json")
    export(server, spans, Compression.Gzip)
    response, from_json = stored_from_otlp_json(tmp_path / "json.duckdb", spans, client)
    assert response.headers["content-type"] == JSON
    assert response.json() == {}
    from_protobuf = stored(server, spans)
    assert len(from_json) == len(spans)
    assert from_json == from_protobuf


def test_hand_written_otlp_json_is_accepted(server: LiveServer, client: httpx.Client) -> None:
    """OTLP JSON written the way other languages send it is stored as described."""
    response = client.post(
        server.traces_url,
        content=gzip.compress(HAND_WRITTEN_JSON.encode()),
        headers={"content-type": "application/json; charset=utf-8", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    [span] = server.store.get_trace("5b8efff798038103d269b633813fc60c")
    assert (span.service_name, span.name, span.session_id) == (
        "frontend-js",
        "HTTP GET",
        "browser-session-1",
    )
    assert span.attributes["http.response.status_code"] == 503


def test_protobuf_success_answer_is_an_export_response(
    server: LiveServer, client: httpx.Client
) -> None:
    """A protobuf request is answered 200 with an ExportTraceServiceResponse, no partial success."""
    response = client.post(
        server.traces_url,
        content=fresh_request().SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")


def test_hostile_attribute_values_round_trip_as_data(
    server: LiveServer, tmp_path: Path, client: httpx.Client
) -> None:
    """Markup, SQL, control characters and long unicode are stored and read back unchanged."""
    spans = sdk_spans(service="hostile <b>'; --", extra=HOSTILE_VALUES)
    export(server, spans, Compression.Gzip)
    _, from_json = stored_from_otlp_json(tmp_path / "hostile.duckdb", spans, client)
    for records in (stored(server, spans), from_json):
        [root] = [r for r in records.values() if r.parent_span_id is None and r.kind == "server"]
        assert root.service_name == "hostile <b>'; --"
        for key, value in HOSTILE_VALUES.items():
            assert root.attributes[key] == value

    name = HOSTILE_VALUES["control"] + HOSTILE_VALUES["html"]
    request = fresh_request()
    request.resource_spans[0].scope_spans[0].spans[0].name = name
    response = client.post(
        server.traces_url, content=request.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 200
    [span] = server.store.get_trace(
        request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    )
    assert span.name == name


def _bad_id_request() -> bytes:
    request = fresh_request()
    request.resource_spans[0].scope_spans[0].spans.add().CopyFrom(
        request.resource_spans[0].scope_spans[0].spans[0]
    )
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01" * 12
    return request.SerializeToString()


def _zero_span_id_request() -> bytes:
    request = fresh_request()
    request.resource_spans[0].scope_spans[0].spans[0].span_id = bytes(8)
    return request.SerializeToString()


def _json_bad_parent() -> bytes:
    document = json.loads(to_otlp_json(fresh_request()))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"] = "abc"
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("headers", "body", "status", "answered_as", "message"),
    [
        (
            {"content-type": PROTOBUF},
            b"\x0a\xff\xff\xff\x0f",
            400,
            PROTOBUF,
            "not a valid protobuf ExportTraceServiceRequest",
        ),
        ({"content-type": JSON}, b'{"resourceSpans": [', 400, JSON, "body is not valid JSON"),
        (
            {"content-type": PROTOBUF},
            _bad_id_request(),
            400,
            PROTOBUF,
            "resourceSpans[0].scopeSpans[0].spans[1].traceId: must be 16 bytes, got 12",
        ),
        (
            {"content-type": PROTOBUF, "content-encoding": "gzip"},
            gzip.compress(_zero_span_id_request()),
            400,
            PROTOBUF,
            "spans[0].spanId: must not be all zeros",
        ),
        (
            {"content-type": JSON},
            _json_bad_parent(),
            400,
            JSON,
            "spans[0].parentSpanId: must be a hex string",
        ),
        (
            {"content-type": PROTOBUF, "content-encoding": "gzip"},
            b"not gzip at all",
            400,
            PROTOBUF,
            "not valid gzip data",
        ),
        (
            {"content-type": "text/plain"},
            b"hello",
            415,
            JSON,
            "Content-Type 'text/plain' is not supported",
        ),
        ({}, b"hello", 415, JSON, "the Content-Type header is missing"),
        (
            {"content-type": PROTOBUF, "content-encoding": "br"},
            b"\x00",
            415,
            PROTOBUF,
            "Content-Encoding 'br' is not supported",
        ),
    ],
    ids=[
        "malformed-protobuf",
        "malformed-json",
        "short-trace-id",
        "zero-span-id",
        "json-bad-parent",
        "corrupt-gzip",
        "wrong-type",
        "no-type",
        "unsupported-encoding",
    ],
)
def test_bad_requests_get_a_status_message_and_store_nothing(
    server: LiveServer,
    client: httpx.Client,
    headers: dict[str, str],
    body: bytes,
    status: int,
    answered_as: str,
    message: str,
) -> None:
    """A bad request is refused with a google.rpc.Status saying why; the next one succeeds."""
    before = server.store.counts()
    response = client.post(server.traces_url, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == answered_as
    answer = rpc_status(response)
    assert message in answer.message
    assert server.store.counts() == before

    follow_up = client.post(
        server.traces_url,
        content=fresh_request().SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert follow_up.status_code == 200
    assert server.store.counts().spans == before.spans + 1


def test_invalid_field_is_named_in_a_bad_request_detail(
    server: LiveServer, client: httpx.Client
) -> None:
    """A 400 for an invalid span carries a google.rpc.BadRequest naming the field."""
    response = client.post(
        server.traces_url, content=_bad_id_request(), headers={"content-type": PROTOBUF}
    )
    [detail] = rpc_status(response).details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    [violation] = bad_request.field_violations
    assert violation.field == "resourceSpans[0].scopeSpans[0].spans[1].traceId"


def test_oversized_body_is_413_whether_declared_or_streamed(
    small_server: LiveServer, client: httpx.Client
) -> None:
    """A body over max_request_bytes is refused with 413, with or without Content-Length."""
    before = small_server.store.counts()
    oversized = b"\x0a" * (SMALL_LIMIT + 1)

    declared = client.post(
        small_server.traces_url, content=oversized, headers={"content-type": PROTOBUF}
    )
    streamed = client.post(
        small_server.traces_url,
        content=iter([oversized[:40_000], oversized[40_000:]]),
        headers={"content-type": PROTOBUF},
    )
    inflated = client.post(
        small_server.traces_url,
        content=gzip.compress(b"{}" + b" " * SMALL_LIMIT),
        headers={"content-type": JSON, "content-encoding": "gzip"},
    )
    for response, what in [
        (declared, "request body is 65537 bytes"),
        (streamed, "request body is more than 65536 bytes"),
        (inflated, "gzip-decompressed body is more than 65536 bytes"),
    ]:
        assert response.status_code == 413
        assert what in rpc_status(response).message
    assert small_server.store.counts() == before

    follow_up = client.post(
        small_server.traces_url,
        content=fresh_request().SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert follow_up.status_code == 200


def test_gzip_bomb_is_refused_with_413(server: LiveServer, client: httpx.Client) -> None:
    """A 1 MB gzip body inflating to 1 GiB is a 413 and stores nothing."""
    before = server.store.counts()
    response = client.post(
        server.traces_url,
        content=gzip_of_zeros(1 << 30),
        headers={"content-type": PROTOBUF, "content-encoding": "gzip"},
    )
    assert response.status_code == 413
    assert "gzip-decompressed body is more than" in rpc_status(response).message
    assert server.store.counts() == before


@pytest.mark.parametrize(
    ("content_type", "body", "answer"),
    [(PROTOBUF, b"", b""), (JSON, b"{}", b"{}"), (JSON, b'{"resourceSpans": []}', b"{}")],
)
def test_empty_request_is_a_success_that_writes_nothing(
    server: LiveServer, client: httpx.Client, content_type: str, body: bytes, answer: bytes
) -> None:
    """A request without spans is answered 200 and leaves the store as it was."""
    before = server.store.counts()
    response = client.post(server.traces_url, content=body, headers={"content-type": content_type})
    assert (response.status_code, response.content) == (200, answer)
    assert server.store.counts() == before


def test_store_that_cannot_write_answers_503_with_retry_after(
    tmp_path: Path, client: httpx.Client
) -> None:
    """When the store refuses the write the sender is told to retry later, not that it is done."""
    with live_server(tmp_path / "closed.duckdb") as closed_server:
        closed_server.store.close()
        response = client.post(
            closed_server.traces_url,
            content=fresh_request().SerializeToString(),
            headers={"content-type": PROTOBUF},
        )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    status = rpc_status(response)
    assert "retry later" in status.message
    retry_info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry_info)
    assert retry_info.retry_delay.seconds == int(response.headers["retry-after"])


def test_under_overload_every_answer_is_stored_or_retryable(tmp_path: Path) -> None:
    """With a one-batch write queue each request is either stored and 200, or 503 and not stored."""
    bodies = [
        protobuf_request(sdk_spans(service=f"burst-{n}")).SerializeToString() for n in range(40)
    ]
    with live_server(tmp_path / "burst.duckdb", write_queue_batches=1) as burst_server:

        def send(body: bytes) -> httpx.Response:
            with httpx.Client(timeout=30) as own_client:
                return own_client.post(
                    burst_server.traces_url, content=body, headers={"content-type": PROTOBUF}
                )

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(send, bodies))
        stored_spans = burst_server.store.counts().spans

    assert {r.status_code for r in responses} <= {200, 503}
    accepted = [r for r in responses if r.status_code == 200]
    assert stored_spans == 5 * len(accepted)
    for refused in (r for r in responses if r.status_code == 503):
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many pending writes" in rpc_status(refused).message


def test_otlp_route_is_documented_with_both_encodings(
    server: LiveServer, client: httpx.Client
) -> None:
    """The API docs list POST /v1/traces with the protobuf and JSON request bodies."""
    schema = client.get(f"{server.url}/api/openapi.json").json()
    content = schema["paths"]["/v1/traces"]["post"]["requestBody"]["content"]
    assert set(content) == {PROTOBUF, JSON}
