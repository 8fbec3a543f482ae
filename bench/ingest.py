"""Ingest throughput: store alone, decoding alone, and OTLP/HTTP end to end.

    python bench/ingest.py --spans 200000

Generates realistic OTLP protobuf requests (a few services per request, 20 spans
per trace, 500 spans per request, ~10 attributes per span), then in one run
measures, on this machine:

  (a) spans/s appended straight to a DuckDBStore from pre-decoded batches,
  (b) spans/s decoding alone (protobuf, and OTLP JSON on a sample),
  (c) spans/s end to end: concurrent httpx senders POSTing to /v1/traces of a
      server started the way ``threadline serve`` starts (``server.runner.serve``)
      in its own process, each request answered only once durable;

and prints the ratio (c)/(a). Everything runs on 127.0.0.1 and every phase is
bounded by a deadline; the server process is stopped in all cases.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Final

import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from threadline.demo.processes import free_port
from threadline.server.batch import SpanBatch
from threadline.server.ingest.decode import PayloadFormat, decode
from threadline.server.storage.duckdb import DuckDBStore

SERVICES: Final = ("frontend", "checkout", "payments", "inventory", "shipping")
ROUTES: Final = ("/cart/{id}", "/checkout", "/pay", "/items/{sku}", "/ship/{order}")
# Batches in flight in the direct phase: enough to keep group commits full, well
# under the store's pending bound so the phase never sees StoreOverloaded.
DIRECT_IN_FLIGHT: Final = 64
JSON_SAMPLE_REQUESTS: Final = 10
SERVER_START_TIMEOUT_S: Final = 30.0
SERVER_STOP_TIMEOUT_S: Final = 60.0
# Each phase stops at this many seconds (the run reports what it managed).
DEFAULT_PHASE_TIMEOUT_S: Final = 120.0


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _int(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def make_requests(
    total_spans: int, spans_per_request: int, spans_per_trace: int, seed: int = 7
) -> list[bytes]:
    """Serialized ExportTraceServiceRequests shaped like a Python service fleet's."""
    rng = random.Random(seed)
    start = time.time_ns() - 3600 * 10**9
    requests: list[bytes] = []
    made = 0
    while made < total_spans:
        request = ExportTraceServiceRequest()
        by_service: dict[str, trace_pb2.ScopeSpans] = {}
        count = min(spans_per_request, total_spans - made)
        for t in range(0, count, spans_per_trace):
            trace_id = rng.randbytes(16)
            session = f"session-{rng.randrange(10_000)}"
            user = f"user-{rng.randrange(2_000)}"
            span_ids = [rng.randbytes(8) for _ in range(min(spans_per_trace, count - t))]
            trace_start = start + made * 1_000_000
            for i, span_id in enumerate(span_ids):
                service = SERVICES[i % len(SERVICES)]
                scope = by_service.get(service)
                if scope is None:
                    resource_spans = request.resource_spans.add()
                    resource_spans.resource.attributes.extend(
                        [
                            _string("service.name", service),
                            _string("service.version", "1.4.2"),
                            _string("deployment.environment", "production"),
                            _string("telemetry.sdk.language", "python"),
                        ]
                    )
                    scope = resource_spans.scope_spans.add()
                    scope.scope.name = "opentelemetry.instrumentation.flask"
                    by_service[service] = scope
                route = ROUTES[i % len(ROUTES)]
                begin = trace_start + i * 50_000
                span = scope.spans.add(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=span_ids[i - 1] if i else b"",
                    name=f"GET {route}",
                    kind=trace_pb2.Span.SPAN_KIND_SERVER
                    if i % 2
                    else trace_pb2.Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=begin,
                    end_time_unix_nano=begin + rng.randrange(100_000, 50_000_000),
                )
                span.attributes.extend(
                    [
                        _string("http.request.method", "GET"),
                        _string("http.route", route),
                        _int("http.response.status_code", 500 if rng.random() < 0.02 else 200),
                        _string("url.path", route.replace("{id}", str(rng.randrange(10**6)))),
                        _string("server.address", f"{service}.internal"),
                        _int("server.port", 8080),
                        _string("network.protocol.version", "1.1"),
                        _string("user_agent.original", "python-requests/2.32"),
                        _string("session.id", session),
                        _string("user.id", user),
                    ]
                )
                if rng.random() < 0.02:
                    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                    span.status.message = "upstream returned 500"
                    span.events.add(
                        name="exception",
                        time_unix_nano=begin + 1000,
                        attributes=[_string("exception.type", "HTTPError")],
                    )
        made += count
        requests.append(request.SerializeToString())
    return requests


def to_otlp_json(body: bytes) -> bytes:
    """A protobuf request as OTLP JSON (hex ids, integer enums)."""
    request = ExportTraceServiceRequest.FromString(body)
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(document).encode()


def measure_decode(requests: Sequence[bytes], deadline: float) -> tuple[list[SpanBatch], float]:
    started = time.perf_counter()
    batches = []
    for body in requests:
        batches.append(decode(body, PayloadFormat.PROTOBUF))
        if time.monotonic() > deadline:
            break
    return batches, time.perf_counter() - started


def measure_direct(batches: Sequence[SpanBatch], db: Path, deadline: float) -> tuple[int, float]:
    """Append every batch through ``DuckDBStore.write``; time until all are durable."""
    store = DuckDBStore(db)
    try:
        in_flight: collections.deque[Future[None]] = collections.deque()
        written = 0
        started = time.perf_counter()
        for batch in batches:
            if len(in_flight) >= DIRECT_IN_FLIGHT:
                in_flight.popleft().result(timeout=max(deadline - time.monotonic(), 1))
            in_flight.append(store.write(batch))
            written += len(batch)
            if time.monotonic() > deadline:
                break
        for future in in_flight:
            future.result(timeout=max(deadline - time.monotonic(), 1))
        elapsed = time.perf_counter() - started
        if store.counts().spans != written:
            raise RuntimeError(f"direct phase stored {store.counts().spans} of {written} spans")
        return written, elapsed
    finally:
        store.close()


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    """``threadline serve`` as a process: the runner with settings for this port and file."""
    code = (
        "from pathlib import Path\n"
        "from threadline.server.runner import serve\n"
        "from threadline.settings import ServerSettings\n"
        f"serve(ServerSettings(host='127.0.0.1', port={port}, db=Path({str(db)!r})))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    stop_server(process)
    raise RuntimeError("server did not start listening in time")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn stops, the runner closes the store
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def send_all(
    url: str,
    bodies: Sequence[tuple[bytes, int]],
    senders: int,
    gzip_bodies: bool,
    deadline: float,
) -> tuple[int, int]:
    """POST every (body, span count) with ``senders`` clients; (spans acknowledged, 503s)."""
    headers = {"content-type": PayloadFormat.PROTOBUF.content_type}
    if gzip_bodies:
        headers["content-encoding"] = "gzip"
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    ok = refused = 0
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def sender() -> None:
            nonlocal ok, refused
            while not queue.empty() and time.monotonic() < deadline:
                body, spans = queue.get_nowait()
                for _attempt in range(20):
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code == 200:
                        ok += spans
                        break
                    refused += 1
                    if response.status_code != 503:
                        raise RuntimeError(
                            f"server answered {response.status_code}: {response.text}"
                        )
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        await asyncio.gather(*(sender() for _ in range(senders)))
    return ok, refused


def measure_http(
    requests: Sequence[bytes],
    spans_per_request: Sequence[int],
    db: Path,
    senders: int,
    gzip_bodies: bool,
    deadline: float,
) -> tuple[int, float, int]:
    bodies = [
        (gzip.compress(body, 1) if gzip_bodies else body, spans)
        for body, spans in zip(requests, spans_per_request, strict=True)
    ]
    port = free_port()
    process = start_server(db, port)
    try:
        started = time.perf_counter()
        sent_spans, refused = asyncio.run(
            send_all(f"http://127.0.0.1:{port}/v1/traces", bodies, senders, gzip_bodies, deadline)
        )
        elapsed = time.perf_counter() - started
    finally:
        stop_server(process)
    store = DuckDBStore(db)
    try:
        stored = store.counts().spans
    finally:
        store.close()
    if stored != sent_spans:
        raise RuntimeError(f"HTTP phase acknowledged {sent_spans} spans but {stored} are stored")
    return sent_spans, elapsed, refused


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--spans-per-trace", type=int, default=20)
    parser.add_argument("--senders", type=int, default=8, help="concurrent HTTP senders")
    parser.add_argument("--gzip", action="store_true", help="send bodies gzip-compressed")
    parser.add_argument("--phase-timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S)
    args = parser.parse_args()

    started = time.perf_counter()
    requests = make_requests(args.spans, args.spans_per_request, args.spans_per_trace)
    generation = time.perf_counter() - started
    mean_bytes = sum(map(len, requests)) / len(requests)
    print(
        f"generated {len(requests)} requests, {args.spans} spans in {generation:.1f} s; "
        f"{mean_bytes / args.spans_per_request:.0f} B/span on the wire; cpus={os.cpu_count()}"
    )

    batches, decode_s = measure_decode(requests, time.monotonic() + args.phase_timeout)
    sizes = [len(b) for b in batches]
    decoded = sum(sizes)
    print(
        f"(b) decode protobuf      {decoded / decode_s:>10,.0f} spans/s  "
        f"({decode_s / decoded * 1e6:.1f} µs/span, {decoded} spans)"
    )
    sample = [to_otlp_json(b) for b in requests[:JSON_SAMPLE_REQUESTS]]
    json_started = time.perf_counter()
    json_spans = sum(len(decode(body, PayloadFormat.JSON)) for body in sample)
    json_s = time.perf_counter() - json_started
    print(
        f"    decode OTLP JSON     {json_spans / json_s:>10,.0f} spans/s  "
        f"({json_s / json_spans * 1e6:.1f} µs/span, sample of {json_spans} spans)"
    )

    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        direct_spans, direct_s = measure_direct(
            batches, Path(tmp) / "direct.duckdb", time.monotonic() + args.phase_timeout
        )
        direct_rate = direct_spans / direct_s
        print(f"(a) DuckDBStore.write     {direct_rate:>10,.0f} spans/s  ({direct_spans} spans)")

        http_spans, http_s, refused = measure_http(
            requests[: len(batches)],
            sizes,
            Path(tmp) / "http.duckdb",
            args.senders,
            args.gzip,
            time.monotonic() + args.phase_timeout,
        )
        http_rate = http_spans / http_s
        encoding = "gzip" if args.gzip else "identity"
        print(
            f"(c) OTLP/HTTP end to end {http_rate:>10,.0f} spans/s  ({http_spans} spans, "
            f"{args.senders} senders, {encoding}, {refused} answers 503 retried)"
        )
    decode_rate = decoded / decode_s
    print(
        f"ratio HTTP/direct = {http_rate / direct_rate:.2f}; "
        f"decode/direct = {decode_rate / direct_rate:.2f}"
    )


if __name__ == "__main__":
    main()
