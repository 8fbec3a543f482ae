"""Export that never hurts the service: latency, export CPU and memory, in one run.

Run: ``python bench/export.py [--seconds 60] [--spans-per-request 5] [--batches 40]``

1. Added request latency. Five copies of one small Flask service run as
   subprocesses, driven round-robin by this script for ``--seconds`` (each request
   makes a server span and ``--spans-per-request`` child spans):

   - ``plain``: not instrumented (the baseline);
   - ``healthy``: ``threadline.instrument(app)``, endpoint a loopback collector that
     answers at once;
   - ``down``: the same, endpoint a port nothing listens on (for the whole run);
   - ``slow``: the same, endpoint a collector that answers each request after 10 s;
   - ``stock-down``: ``FlaskInstrumentor`` + OpenTelemetry's ``BatchSpanProcessor`` +
     stock ``OTLPSpanExporter``, endpoint down — for the memory comparison.

   Printed: p50 / p99 client-side latency per service and the added latency vs
   ``plain``; then each service's peak resident memory (``VmHWM``) and its Threadline
   export counters.
2. CPU per exported span: the same batches of finished spans exported to the healthy
   collector by the stock ``OTLPSpanExporter`` and by Threadline's encoder + transport
   (gzip on), and encoding alone for both; ``time.process_time`` per span. Also
   redaction (default rules) + encoding, as the export worker runs them by default.
3. Memory per queued span: ``tracemalloc`` growth while holding 10,000 finished spans
   (what ``BatchSpanProcessor`` queues) vs their compact records.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

SLOW_ANSWER_S: Final = 10.0
SERVICES: Final = ("plain", "healthy", "down", "slow", "stock-down")
BATCH: Final = 512
ATTRIBUTES: Final = {"order.id": 1234, "order.items": 3, "shop.region": "eu-west"}


# --- child: one service ------------------------------------------------------------------


def _serve(kind: str, endpoint: str, spans_per_request: int) -> None:
    import os

    import flask
    from opentelemetry import trace
    from werkzeug.serving import make_server

    app = flask.Flask(f"bench-{kind}")
    tracer_provider: Any = None
    if kind == "stock-down":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=Resource.create({"service.name": kind}))
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
        FlaskInstrumentor().instrument_app(app, tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    elif kind != "plain":
        import threadline

        threadline.configure(service_name=f"bench-{kind}", endpoint=endpoint)
        threadline.instrument(app)
    tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("bench")

    @app.get("/work")
    def work() -> dict[str, int]:
        for index in range(spans_per_request):
            with tracer.start_as_current_span("step", attributes={**ATTRIBUTES, "i": index}):
                pass
        return {"ok": 1}

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        import threadline

        snapshot = threadline.stats()
        return {
            "exported": snapshot.exported,
            "dropped": dict(snapshot.dropped),
            "retried": snapshot.retried,
            "queued": snapshot.queued,
            "pid": os.getpid(),
        }

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(json.dumps({"port": server.server_port}), flush=True)
    server.serve_forever()


# --- parent: collectors, services, load ----------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.server.slow:  # type: ignore[attr-defined]
            time.sleep(SLOW_ANSWER_S)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _collector(slow: bool) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.daemon_threads = True
    server.slow = slow  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _services(endpoints: dict[str, str], spans: int) -> Iterator[dict[str, Any]]:
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        urls = {}
        for kind, endpoint in endpoints.items():
            command = [sys.executable, __file__, "--serve", kind, "--endpoint", endpoint]
            process = subprocess.Popen(
                [*command, "--spans-per-request", str(spans)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            processes[kind] = process
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise SystemExit(f"service {kind} did not start")
            urls[kind] = f"http://127.0.0.1:{json.loads(line)['port']}"
        yield {"urls": urls, "processes": processes}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _latency_phase(seconds: float, spans: int) -> None:
    import httpx

    from threadline.demo.processes import free_port

    with _collector(slow=False) as healthy, _collector(slow=True) as slow:
        down = f"http://127.0.0.1:{free_port()}"
        endpoints = {
            "plain": healthy,
            "healthy": healthy,
            "down": down,
            "slow": slow,
            "stock-down": down,
        }
        with _services(endpoints, spans) as running:
            clients = {k: httpx.Client(base_url=u, timeout=30) for k, u in running["urls"].items()}
            for client in clients.values():  # warm-up
                for _ in range(50):
                    client.get("/work")
            latencies: dict[str, list[float]] = {k: [] for k in clients}
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for kind, client in clients.items():
                    started = time.perf_counter()
                    response = client.get("/work")
                    latencies[kind].append((time.perf_counter() - started) * 1e6)
                    if response.status_code != 200:
                        raise SystemExit(f"{kind} answered {response.status_code}")
            stats = {k: c.get("/stats").json() for k, c in clients.items()}
            peaks = {k: _peak_rss_kb(p.pid) for k, p in running["processes"].items()}
            for client in clients.values():
                client.close()
    base = latencies["plain"]
    print(f"\n1. Request latency over {seconds:.0f} s, {len(base)} requests per service, "
          f"{spans + 1} spans per request (µs, client side)")  # fmt: skip
    print(f"  {'service':12s} {'p50':>8s} {'p99':>8s} {'+p50':>8s} {'+p99':>8s}")
    base_p50, base_p99 = _pct(base, 50), _pct(base, 99)
    for kind, values in latencies.items():
        p50, p99 = _pct(values, 50), _pct(values, 99)
        print(f"  {kind:12s} {p50:8.0f} {p99:8.0f} {p50 - base_p50:+8.0f} {p99 - base_p99:+8.0f}")
    print(f"\n   Peak resident memory after {seconds:.0f} s (endpoint down for the 'down' ones)")
    for kind in SERVICES:
        extra = ""
        if kind in ("healthy", "down", "slow"):
            s = stats[kind]
            dropped = ", ".join(f"{r} {n}" for r, n in s["dropped"].items() if n) or "none"
            extra = (
                f"  exported {s['exported']}, retried {s['retried']}, queued {s['queued']}, "
                f"dropped: {dropped}"
            )
        print(f"  {kind:12s} {peaks[kind] / 1024:7.1f} MiB{extra}")


def _pct(values: list[float], percentile: int) -> float:
    return statistics.quantiles(values, n=100)[percentile - 1] if len(values) > 1 else values[0]


# --- export CPU and queued memory -----------------------------------------------------------


def _finished_spans(count: int) -> list[Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    held: list[ReadableSpan] = []

    class Hold(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            held.append(span)

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(Hold())
    tracer = provider.get_tracer("bench")
    for index in range(count):
        with tracer.start_as_current_span("work", attributes={**ATTRIBUTES, "i": index}):
            pass
    return held


def _cpu_per_span(work: Callable[[], object], spans: int, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        samples.append((time.process_time() - started) / spans * 1e6)
    return statistics.median(samples)


def _export_cpu_phase(batches: int) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from threadline.redaction.configured import redactor_from_settings
    from threadline.sdk.export.compact import capture
    from threadline.sdk.export.encoder import SpanEncoder
    from threadline.sdk.export.transport import HttpTransport, TransportConfig
    from threadline.sdk.redaction_processor import redact_compact
    from threadline.settings import SdkSettings

    redactor = redactor_from_settings(SdkSettings(), fallback_hash_key="bench-key")
    assert redactor is not None  # redaction is on by default

    spans = _finished_spans(BATCH * batches)
    chunks = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    records = [[capture(s, None) for s in chunk] for chunk in chunks]
    encoder = SpanEncoder()
    with _collector(slow=False) as endpoint:
        stock = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        transport = HttpTransport(TransportConfig(endpoint, timeout_s=10))
        plain = HttpTransport(TransportConfig(endpoint, timeout_s=10, compression="none"))

        def stock_export() -> None:
            for chunk in chunks:
                stock.export(chunk)

        def ours_export(via: HttpTransport) -> Callable[[], None]:
            def run() -> None:
                for batch in records:
                    via.post(encoder.encode_request(batch))

            return run

        stock_encode = _cpu_per_span(
            lambda: [encode_spans(c).SerializePartialToString() for c in chunks], len(spans)
        )
        ours_encode = _cpu_per_span(
            lambda: [encoder.encode_request(b) for b in records], len(spans)
        )
        ours_redact_encode = _cpu_per_span(
            lambda: [
                encoder.encode_request([redact_compact(r, redactor) for r in b]) for b in records
            ],
            len(spans),
        )
        stock_send = _cpu_per_span(stock_export, len(spans))
        ours_send_gzip = _cpu_per_span(ours_export(transport), len(spans))
        ours_send_plain = _cpu_per_span(ours_export(plain), len(spans))
        stock.shutdown()
    capture_cpu = _cpu_per_span(lambda: [capture(s, None) for s in spans], len(spans))
    print(f"\n2. Export CPU per span ({len(spans)} spans in batches of {BATCH}; µs, median of 5)")
    print(f"  encode only:   stock {stock_encode:6.2f}   threadline {ours_encode:6.2f}"
          f"   ratio {ours_encode / stock_encode:.3f} (goal ≤ 0.25)")  # fmt: skip
    print(f"  redact + encode (default rules, the worker's default): threadline "
          f"{ours_redact_encode:6.2f}   ratio {ours_redact_encode / stock_encode:.3f}"
          " vs stock encode")  # fmt: skip
    print(f"  encode + send: stock {stock_send:6.2f} (no gzip)   threadline "
          f"{ours_send_plain:6.2f} (no gzip, ratio {ours_send_plain / stock_send:.3f}), "
          f"{ours_send_gzip:6.2f} (gzip, ratio {ours_send_gzip / stock_send:.3f})")  # fmt: skip
    print(f"  (capture into the compact record on the caller's thread: {capture_cpu:.2f} µs)")


def _memory_phase(count: int = 10_000) -> None:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    from threadline.sdk.export.compact import capture

    def held_bytes(convert: Callable[[ReadableSpan], Any]) -> float:
        """Growth while holding what ``convert`` keeps of each span, as a queue would."""
        held: list[Any] = []

        class Hold(SpanProcessor):
            def on_end(self, span: ReadableSpan) -> None:
                held.append(convert(span))

        provider = TracerProvider()
        provider.add_span_processor(Hold())
        tracer = provider.get_tracer("bench")
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(count):
            with tracer.start_as_current_span("work", attributes={**ATTRIBUTES, "i": index}):
                pass
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        held.clear()
        return (after - before) / count

    stock = held_bytes(lambda span: span)
    compact = held_bytes(lambda span: capture(span, None))
    print(f"\n3. Memory per queued span ({count} spans, tracemalloc)")
    print(f"  stock (ReadableSpan) {stock:7.0f} B   compact record {compact:7.0f} B"
          f"   ratio {compact / stock:.3f} (goal ≤ 0.5)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds",
        "--down-seconds",
        type=float,
        default=60.0,
        help="length of the latency run (the endpoint is down throughout)",
    )
    parser.add_argument("--spans-per-request", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40, help="batches of 512 for CPU")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.endpoint, args.spans_per_request)
        return
    print(f"Python {sys.version.split()[0]}")
    _latency_phase(args.seconds, args.spans_per_request)
    _export_cpu_phase(args.batches)
    _memory_phase()


if __name__ == "__main__":
    main()
