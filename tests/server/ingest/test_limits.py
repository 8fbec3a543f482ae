"""Limits on what one client can send: spans, attributes, value length, ratio, rate."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from support.live_server import LiveServer, live_server
from threadline.server.errors import PayloadTooLarge, TooManyRequests
from threadline.server.ingest.body import decompress
from threadline.server.ingest.decode import PayloadFormat, decode, request_to_batch
from threadline.server.ingest.limits import (
    DROPPED_ATTRIBUTES_KEY,
    TRUNCATED_KEY,
    IngestLimits,
    RateLimiter,
)

from .conftest import gzip_of_zeros
from .otlp_payloads import one_span_request, records, string_value

PROTOBUF = "application/x-protobuf"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
INGEST_TOKEN = "ingest-token-0123456789abcdef"
OTHER_TOKEN = "ingest-token-two-0123456789abcdef"
MILLION = 1_000_000


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: how messages nest on the wire."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def request_with_extra_span_bytes(extra: bytes) -> bytes:
    """A one-span request whose span has ``extra`` (encoded fields) appended to it."""
    span = one_span_request().resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    spans = field(2, span + extra)  # ScopeSpans.spans
    scope_spans = field(2, spans)  # ResourceSpans.scope_spans
    return field(1, scope_spans)  # ExportTraceServiceRequest.resource_spans


def million_attributes(*, distinct: bool) -> bytes:
    """Span.attributes (field 9) a million times: distinct keys, or empty ones (2 bytes each)."""
    if distinct:
        return b"".join(
            field(9, KeyValue(key=f"k{n}", value=AnyValue(int_value=n)).SerializeToString())
            for n in range(MILLION)
        )
    return field(9, b"") * MILLION


def test_too_many_spans_in_one_request_is_413() -> None:
    """A request over max_spans_per_request is refused whole, naming the setting."""
    request = one_span_request()
    template = request.resource_spans[0].scope_spans[0].spans[0]
    for n in range(10):
        span = request.resource_spans[0].scope_spans[0].spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 1).to_bytes(8, "big")
    with pytest.raises(PayloadTooLarge, match="max_spans_per_request"):
        request_to_batch(request, IngestLimits(max_spans_per_request=10))
    assert len(request_to_batch(request, IngestLimits(max_spans_per_request=11))) == 11


def test_a_million_attributes_keep_the_first_and_count_the_rest() -> None:
    """A 1,000,000-attribute span is kept with its first attributes and a dropped count."""
    body = request_with_extra_span_bytes(million_attributes(distinct=True))
    [span] = records(decode(body, PayloadFormat.PROTOBUF))
    limit = IngestLimits().max_attributes_per_span
    assert span.attributes[DROPPED_ATTRIBUTES_KEY] == MILLION - limit
    assert len(span.attributes) == limit + 1
    assert span.attributes["k0"] == 0
    assert f"k{limit}" not in span.attributes


def test_long_values_are_cut_and_marked() -> None:
    """Over-long values, name and status message are cut to the limit and listed as cut."""
    limits = IngestLimits(max_attribute_value_length=100)
    request = one_span_request(name="n" * 1000)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.status.message = "m" * 1000
    span.attributes.append(string_value("big", "b" * 10_000))
    span.attributes.append(string_value("small", "fine"))
    nested = span.attributes.add(key="list")
    nested.value.array_value.values.add(string_value="x" * 500)
    [stored] = records(request_to_batch(request, limits))
    assert stored.name == "n" * 100
    assert stored.status_message == "m" * 100
    assert stored.attributes["big"] == "b" * 100
    assert stored.attributes["small"] == "fine"
    assert stored.attributes["list"] == ["x" * 100]
    assert sorted(stored.attributes[TRUNCATED_KEY]) == ["big", "list", "name", "status.message"]


def test_events_and_array_items_beyond_the_limits_are_dropped_and_marked() -> None:
    """Events past max_events_per_span and array items past max_attributes_per_span go."""
    limits = IngestLimits(max_events_per_span=5, max_attributes_per_span=3)
    request = one_span_request()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for n in range(20):
        span.events.add(name=f"event {n}", time_unix_nano=1_700_000_000_000_000_000 + n)
    values = span.attributes.add(key="many").value.array_value.values
    for n in range(10):
        values.add(int_value=n)
    [stored] = records(request_to_batch(request, limits))
    assert [e.name for e in stored.events] == [f"event {n}" for n in range(5)]
    assert stored.attributes["many"] == [0, 1, 2]
    assert sorted(stored.attributes[TRUNCATED_KEY]) == ["events", "many"]


def test_spans_within_the_limits_are_stored_untouched() -> None:
    """No mark appears on a span that needed no cut."""
    [stored] = records(request_to_batch(one_span_request()))
    assert TRUNCATED_KEY not in stored.attributes
    assert DROPPED_ATTRIBUTES_KEY not in stored.attributes


def test_decompression_ratio_stops_a_small_bomb_early() -> None:
    """A few KB inflating to MBs is stopped at max_decompression_ratio × the bytes sent."""
    bomb = gzip_of_zeros(8 << 20)
    assert len(bomb) < 16_000
    with pytest.raises(PayloadTooLarge, match="max_decompression_ratio 100"):
        decompress(bomb, ("gzip",), 8 << 20, max_ratio=100)
    ordinary = gzip.compress(json.dumps({"resourceSpans": []}).encode())
    assert decompress(ordinary, ("gzip",), 8 << 20, max_ratio=100) == b'{"resourceSpans": []}'


def test_rate_limiter_refuses_while_empty_and_refills() -> None:
    """A token's bucket empties with spans sent and refills at the rate; keys are separate."""
    now = [0.0]
    limiter = RateLimiter(100, clock=lambda: now[0])
    limiter.take("a", 250)  # one large request may overdraw
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("a", 1)
    assert refused.value.retry_after_s == 2  # 150 spans short at 100/s
    assert refused.value.status_code == 429
    limiter.take("b", 1)
    now[0] = 1.4
    with pytest.raises(TooManyRequests) as still:
        limiter.take("a", 1)
    assert still.value.retry_after_s == 1  # 10 spans short: the wait left, not the first one
    now[0] = 1.6
    limiter.take("a", 1)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tokens = f"admin:{ADMIN_TOKEN},ingest:{INGEST_TOKEN},ingest:{OTHER_TOKEN}"
    db = tmp_path_factory.mktemp("limits") / "spans.duckdb"
    with live_server(db, tokens=tokens, ingest_rate_per_token=100) as server:
        yield server


def post(
    server: LiveServer, body: bytes, token: str = INGEST_TOKEN, **headers: str
) -> httpx.Response:
    return httpx.post(
        server.traces_url,
        content=body,
        headers={"content-type": PROTOBUF, "authorization": f"Bearer {token}", **headers},
        timeout=30,
    )


def test_gzip_bomb_is_413_and_the_server_carries_on(tmp_path: Path) -> None:
    """A 1 GiB gzip bomb and a small one are both refused; the next request is served."""
    with live_server(tmp_path / "spans.duckdb") as server:
        for size in (1 << 30, 8 << 20):
            answer = httpx.post(
                server.traces_url,
                content=gzip_of_zeros(size),
                headers={"content-type": PROTOBUF, "content-encoding": "gzip"},
                timeout=30,
            )
            assert answer.status_code == 413
        ok = httpx.post(
            server.traces_url,
            content=one_span_request().SerializeToString(),
            headers={"content-type": PROTOBUF},
        )
        assert ok.status_code == 200


def test_hundred_megabyte_body_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A declared 100 MB body is refused from its headers; a streamed one within the limit."""
    with live_server(tmp_path / "spans.duckdb") as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: 104857600\r\n\r\n" + b"\x0a" * 65536
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 413")

        def hundred_megabytes() -> Iterator[bytes]:
            chunk = b"\x0a" * (1 << 20)
            for _ in range(100):
                yield chunk

        try:
            streamed = httpx.post(
                server.traces_url,
                content=hundred_megabytes(),
                headers={"content-type": PROTOBUF},
                timeout=30,
            )
            assert streamed.status_code == 413
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
        ok = httpx.post(
            server.traces_url,
            content=one_span_request().SerializeToString(),
            headers={"content-type": PROTOBUF},
        )
        assert ok.status_code == 200


def test_million_attribute_span_over_http_is_stored_bounded(limited: LiveServer) -> None:
    """Sent to the real receiver, the span is stored with the attribute limit applied."""
    answer = post(
        limited, request_with_extra_span_bytes(million_attributes(distinct=False)), ADMIN_TOKEN
    )
    assert answer.status_code == 200
    [span] = limited.store.get_trace("5b8efff798038103d269b633813fc60c")
    assert (
        span.attributes[DROPPED_ATTRIBUTES_KEY] == MILLION - IngestLimits().max_attributes_per_span
    )


def test_token_over_its_rate_gets_429_with_retry_after(limited: LiveServer) -> None:
    """Past ingest_rate_per_token a token is told to wait; another token is not."""
    request = one_span_request()
    scope = request.resource_spans[0].scope_spans[0]
    template = scope.spans[0]
    # 1,100 spans against 100 a second: the token owes ten seconds, so the next request
    # is refused however slowly a loaded machine gets to send it.
    for n in range(1099):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 2).to_bytes(8, "big")
        span.trace_id = bytes.fromhex("7" * 32)
    first = post(limited, request.SerializeToString())
    second = post(limited, one_span_request().SerializeToString())
    other = post(limited, one_span_request().SerializeToString(), OTHER_TOKEN)
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert other.status_code == 200
