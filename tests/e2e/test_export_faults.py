"""Export under endpoint faults, with a real host service process and a real OTLP server.

The host service (``tests/sdk/export/host_service.py``) runs in its own process with
Threadline configured; the OTLP endpoint is a small server on loopback whose behaviour
the test switches: down at start, killed mid-run and restarted, 503 with Retry-After,
slow (10 s per answer), 400. In every case the service's requests keep succeeding,
its queue stays within ``queue_size``, and after recovery the spans the endpoint
received plus the spans the SDK counted as dropped equal the spans the service made.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.processes import ready_script
from threadline.demo.processes import free_port

pytestmark = pytest.mark.e2e

HOST_SERVICE: Final = Path(__file__).parents[1] / "sdk" / "export" / "host_service.py"
QUEUE_SIZE: Final = 200
SPANS_PER_REQUEST: Final = 10
SLOW_ANSWER_S: Final = 10.0
SETTINGS: Final = {
    "THREADLINE_EXPORT_DELAY_MS": "100",
    "THREADLINE_EXPORT_BATCH_SIZE": "50",
    "THREADLINE_QUEUE_SIZE": str(QUEUE_SIZE),
    "THREADLINE_RETRY_DEADLINE_S": "1.5",
    "THREADLINE_RETRY_BACKOFF_S": "0.1",
    "THREADLINE_EXPORT_TIMEOUT_S": "15",  # longer than the slow mode: answers do arrive
    "THREADLINE_SHUTDOWN_TIMEOUT_S": "2",
    "THREADLINE_STATS_INTERVAL_S": "0",
    "THREADLINE_SAMPLING_POLL_S": "0",  # the fault server serves no sampling rules
}
# Generous: the queue (200 compact spans, ~1 KB each), one batch in flight and its
# encoding; what it guards against is growth with the number of spans made.
MEMORY_BOUND_BYTES: Final = 8 * 1024 * 1024
WAIT_S: Final = 20.0


@dataclass
class Endpoint:
    """What the fault server does and what it received."""

    mode: str = "ok"  # ok | down | 503 | slow | 400
    received: int = 0
    answers: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector

    def do_POST(self) -> None:
        endpoint: Endpoint = self.server.endpoint  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = endpoint.mode
        if mode == "down":
            # Killed: the request is lost and the connection drops without an answer.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            time.sleep(SLOW_ANSWER_S)
        status = {"503": 503, "400": 400}.get(mode, 200)
        if status == 200:
            request = ExportTraceServiceRequest()
            request.ParseFromString(gzip.decompress(body))
            count = sum(
                1
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
                if span.name == "work"
            )
            with endpoint.lock:
                endpoint.received += count
        with endpoint.lock:
            endpoint.answers.append((time.monotonic(), status))
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class FaultServer:
    """An OTLP/HTTP server on a fixed loopback port that can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = Endpoint()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.endpoint.mode = "ok" if self.endpoint.mode == "down" else self.endpoint.mode
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.endpoint = self.endpoint  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def kill(self) -> None:
        """Stop listening and drop every open connection's next request."""
        self.endpoint.mode = "down"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def fault_server(port: int, *, started: bool = True) -> Iterator[FaultServer]:
    server = FaultServer(port)
    if started:
        server.start()
    else:
        server.endpoint.mode = "down"
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def host_service(port: int, log: Path) -> Iterator[httpx.Client]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")},
        **SETTINGS,
        "THREADLINE_ENDPOINT": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
    }
    with (
        ready_script(HOST_SERVICE, env=env, log=log) as (_, ready),
        httpx.Client(base_url=f"http://127.0.0.1:{ready['port']}", timeout=10) as client,
    ):
        yield client


class Traffic:
    """Requests to the host service; every one must succeed while the endpoint misbehaves."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sent = 0

    def make(self, requests: int) -> None:
        for _ in range(requests):
            response = self.client.get("/work", params={"spans": SPANS_PER_REQUEST})
            assert response.status_code == 200
            self.sent += SPANS_PER_REQUEST

    def stats(self, path: str = "/stats") -> dict[str, Any]:
        response = self.client.get(path)
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        assert result["queued"] <= QUEUE_SIZE
        assert result["memory_growth"] < MEMORY_BOUND_BYTES, result
        return result

    def settle(self, server: FaultServer) -> dict[str, Any]:
        """Stats once every span made is either received or counted as dropped."""
        deadline = time.monotonic() + WAIT_S
        stats = self.stats("/flush")
        for _ in range(int(WAIT_S / 0.1)):
            accounted = server.endpoint.received + stats["dropped_total"]
            if accounted >= self.sent or time.monotonic() > deadline:
                break
            time.sleep(0.1)
            stats = self.stats("/flush")
        return stats


def test_endpoint_down_at_start(tmp_path: Path) -> None:
    """Spans made before the endpoint exists are queued or counted as dropped; then all arrive."""
    port = free_port()
    with fault_server(port, started=False) as server, host_service(port, tmp_path / "h.log") as c:
        traffic = Traffic(c)
        traffic.make(30)  # 300 spans: more than the queue holds while nothing is sent
        during = traffic.stats()
        assert during["dropped"]["queue_full"] + during["dropped"]["retry_deadline"] > 0
        server.start()
        traffic.make(10)
        stats = traffic.settle(server)
        assert server.endpoint.received > 0
        assert server.endpoint.received + stats["dropped_total"] == traffic.sent


def test_endpoint_killed_mid_run_and_restarted(tmp_path: Path) -> None:
    """An endpoint that dies and comes back loses only spans the SDK counted as dropped."""
    port = free_port()
    log = tmp_path / "h.log"
    with fault_server(port) as server, host_service(port, log) as client:
        traffic = Traffic(client)
        traffic.make(10)
        server.kill()
        traffic.make(30)
        time.sleep(1.0)
        server.start()
        traffic.make(10)
        stats = traffic.settle(server)
        assert stats["dropped_total"] > 0
        assert server.endpoint.received + stats["dropped_total"] == traffic.sent
    # Many failed attempts, but warnings are rate-limited: one per kind per minute.
    warnings = [line for line in log.read_text().splitlines() if "Threadline:" in line]
    assert 1 <= len(warnings) <= 2, warnings  # queue full; endpoint unreachable


def test_503_with_retry_after_is_retried_after_the_asked_delay(tmp_path: Path) -> None:
    """A 503 with Retry-After: 1 is retried no sooner than a second later, and nothing is lost."""
    port = free_port()
    with fault_server(port) as server, host_service(port, tmp_path / "h.log") as client:
        server.endpoint.mode = "503"
        traffic = Traffic(client)
        traffic.make(2)
        deadline = time.monotonic() + WAIT_S
        for _ in range(int(WAIT_S / 0.05)):
            if server.endpoint.answers or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        server.endpoint.mode = "ok"
        stats = traffic.settle(server)
        assert stats["retried"] > 0
        assert stats["dropped_total"] == 0
        assert server.endpoint.received == traffic.sent
        first_503 = next(t for t, status in server.endpoint.answers if status == 503)
        next_answer = next(t for t, _ in server.endpoint.answers if t > first_503)
        assert next_answer - first_503 >= 0.9


def test_slow_endpoint_does_not_slow_the_service(tmp_path: Path) -> None:
    """While each export takes 10 s, requests still succeed and the queue stays bounded."""
    port = free_port()
    with fault_server(port) as server, host_service(port, tmp_path / "h.log") as client:
        server.endpoint.mode = "slow"
        traffic = Traffic(client)
        traffic.make(40)  # 400 spans while the first export is stuck: the queue overflows
        during = traffic.stats()
        assert during["dropped"]["queue_full"] > 0
        server.endpoint.mode = "ok"
        stats = traffic.settle(server)
        assert server.endpoint.received + stats["dropped_total"] == traffic.sent


def test_400_is_dropped_and_counted_without_retry(tmp_path: Path) -> None:
    """A batch the endpoint rejects with 400 is dropped, counted as rejected, and not retried."""
    port = free_port()
    with fault_server(port) as server, host_service(port, tmp_path / "h.log") as client:
        server.endpoint.mode = "400"
        traffic = Traffic(client)
        traffic.make(5)
        stats = traffic.settle(server)
        assert stats["dropped"]["rejected"] == traffic.sent
        assert stats["retried"] == 0
        server.endpoint.mode = "ok"
        traffic.make(5)
        stats = traffic.settle(server)
        assert server.endpoint.received == 5 * SPANS_PER_REQUEST
        assert server.endpoint.received + stats["dropped_total"] == traffic.sent
