"""A 200 from `threadline serve` means the spans survive a SIGKILL of the server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from threadline.demo.processes import free_port

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 30.0
SENDERS = 4
REQUESTS_PER_SENDER = 10


class _Recording(SpanExporter):
    """Keeps the trace ids of every batch the real exporter got a 200 for."""

    def __init__(self, endpoint: str) -> None:
        # Generous: this test is about what an acknowledged span becomes, not latency,
        # and a loaded machine can take seconds to answer one of the concurrent sends.
        self._exporter = OTLPSpanExporter(endpoint=endpoint, timeout=60)
        self.acknowledged: list[tuple[str, int]] = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        result = self._exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.acknowledged += [
                (format(span.context.trace_id, "032x"), span.context.span_id) for span in spans
            ]
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()


@contextmanager
def _server(port: int, db: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--port", str(port), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("threadline serve did not start")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _send(exporter: _Recording, sender: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"sender-{sender}"}))
    tracer = provider.get_tracer("durability")
    for request in range(REQUESTS_PER_SENDER):
        spans = []
        with tracer.start_as_current_span(f"request {request}") as root:
            spans.append(root)
            with tracer.start_as_current_span("child") as child:
                spans.append(child)
        exporter.export(spans)  # type: ignore[arg-type]


def test_acknowledged_spans_survive_sigkill_and_restart(tmp_path: Path) -> None:
    """Every span answered with 200 is stored after the server is SIGKILLed and restarted."""
    port = free_port()
    db = tmp_path / "spans.duckdb"
    exporter = _Recording(f"http://127.0.0.1:{port}/v1/traces")
    with _server(port, db) as server:
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(lambda sender: _send(exporter, sender), range(SENDERS)))
        # No graceful shutdown: whatever was acknowledged must already be on disk.
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert len(exporter.acknowledged) == SENDERS * REQUESTS_PER_SENDER * 2

    with _server(port, db):
        stored: set[tuple[str, int]] = set()
        for trace_id in {trace_id for trace_id, _ in exporter.acknowledged}:
            answer = httpx.get(f"http://127.0.0.1:{port}/api/traces/{trace_id}", timeout=10)
            assert answer.status_code == 200, answer.text
            stored |= {(trace_id, int(span["span_id"], 16)) for span in answer.json()["spans"]}
    assert set(exporter.acknowledged) <= stored
