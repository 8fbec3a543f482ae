"""What Threadline adds to the OpenTelemetry SDK, per span and per instrumented Flask request.

Run: ``python bench/sdk_overhead.py [--spans N] [--requests N] [--rounds K]``

Three groups, each in its own subprocess (Threadline's ``configure()`` sets the global
TracerProvider, which a process can do once):

- spans, exporter that does nothing: start+end a span with three attributes under
  ``start_as_current_span`` with (a) no tracing (the API's no-op tracer), (b) the bare
  SDK — TracerProvider + BatchSpanProcessor — and (c) Threadline's ``configure()``
  pipeline, inside a ``journey`` (session + user) and outside one;
- spans, stock OTLP/HTTP exporter to a loopback collector run by this script: (b), (c);
- Flask requests through werkzeug's test client, exporting OTLP to the collector:
  plain app, ``FlaskInstrumentor`` + bare SDK, ``threadline.instrument(app)``; the
  requests carry ``X-Session-Id``, so Threadline's inbound hook starts a journey.

Within a group the variants run interleaved, many short rounds, in one process: the
bare SDK's provider is a local one (its tracer is used directly, which costs the same
per span as a global one), so machine load drifting during the run hits every variant
alike, and comparisons are made round by round. Each timed loop ends with a flush, so
work done on the export thread is counted, and queues are sized so nothing is dropped
(dropping would make export look free).
Printed: the median over rounds per variant, and the median of the per-round ratios
Threadline / bare. Goal: Threadline adds at most 10% to the bare per-span cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

ATTRIBUTES: Final = {"order.id": 1234, "order.items": 3, "shop.region": "eu-west"}
# Larger than the spans of one timed loop, so nothing is dropped while we measure.
QUEUE_SIZE: Final = 65_536
EXPORT_DELAY_MS: Final = 1000
BATCH_SIZE: Final = 512
SESSION_HEADER: Final = {"X-Session-Id": "s-8f3a2c"}


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    body: Callable[[], None]
    flush: Callable[[], object] = lambda: None
    around: Callable[[], AbstractContextManager[object]] = nullcontext


@dataclass(frozen=True, slots=True)
class Comparison:
    label: str
    bare: str
    threadline: str


@dataclass(frozen=True, slots=True)
class Group:
    title: str
    unit: str
    comparisons: list[Comparison] = field(default_factory=list)


GROUPS: Final = {
    "spans-null": Group(
        "Per span, exporter that does nothing",
        "µs/span",
        [
            Comparison("threadline / bare, in a journey", "bare SDK", "threadline, journey"),
            Comparison("threadline / bare, no journey", "bare SDK", "threadline, no journey"),
        ],
    ),
    "spans-otlp": Group(
        "Per span, OTLP/HTTP to a loopback collector",
        "µs/span",
        [Comparison("threadline / bare, in a journey", "bare SDK", "threadline, journey")],
    ),
    "requests": Group(
        "Per Flask request (werkzeug test client), OTLP/HTTP to a loopback collector",
        "µs/request",
        [Comparison("threadline / bare OTel", "FlaskInstrumentor", "threadline.instrument")],
    ),
}


# --- child side: one group per process ---------------------------------------------------


def _null_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return NullExporter()


def _otlp_exporter(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def _bare_provider(exporter: Any) -> Any:
    """The bare SDK as OpenTelemetry's docs set it up, with Threadline's batch settings."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=QUEUE_SIZE,
            schedule_delay_millis=EXPORT_DELAY_MS,
            max_export_batch_size=BATCH_SIZE,
        )
    )
    return provider


def _threadline_provider(endpoint: str, exporter: Any | None) -> Any:
    """Threadline's configure() pipeline; ``exporter`` replaces OTLP for the null group."""
    from threadline.sdk import setup

    settings = setup.load_settings(
        {
            "service_name": "bench",
            "endpoint": endpoint,
            "queue_size": QUEUE_SIZE,
            "export_delay_ms": EXPORT_DELAY_MS,
            "export_batch_size": BATCH_SIZE,
            "user_id_key": "bench-key",
        }
    )
    return setup.install(settings, exporter=exporter).tracer_provider


def _span_body(tracer: Any) -> Callable[[], None]:
    def one_span() -> None:
        with tracer.start_as_current_span("work", attributes=ATTRIBUTES):
            pass

    return one_span


def _span_variants(endpoint: str, null_exporter: bool) -> list[Variant]:
    from opentelemetry import trace

    import threadline

    def exporter() -> Any:
        return _null_exporter() if null_exporter else _otlp_exporter(endpoint)

    bare = _bare_provider(exporter())
    ours = _threadline_provider(endpoint, exporter() if null_exporter else None)

    def in_journey() -> AbstractContextManager[object]:
        return threadline.journey(session_id="s-8f3a2c", user_id="customer-42")

    variants = [
        Variant("bare SDK", _span_body(bare.get_tracer("bench")), bare.force_flush),
        Variant(
            "threadline, journey",
            _span_body(ours.get_tracer("bench")),
            ours.force_flush,
            in_journey,
        ),
    ]
    if null_exporter:
        noop = trace.NoOpTracerProvider().get_tracer("bench")
        variants.insert(0, Variant("no tracing", _span_body(noop)))
        variants.append(
            Variant(
                "threadline, no journey", _span_body(ours.get_tracer("bench")), ours.force_flush
            )
        )
    return variants


def _flask_app() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app


def _request_body(app: Any) -> Callable[[], None]:
    client = app.test_client()

    def one_request() -> None:
        response = client.get("/items/7", headers=SESSION_HEADER)
        if response.status_code != 200:
            raise RuntimeError(f"bench request failed: {response.status_code}")

    return one_request


def _request_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    import threadline

    bare = _bare_provider(_otlp_exporter(endpoint))
    otel_app = _flask_app()
    FlaskInstrumentor().instrument_app(otel_app, tracer_provider=bare)  # type: ignore[no-untyped-call]
    ours = _threadline_provider(endpoint, None)
    threadline_app = _flask_app()
    threadline.instrument(threadline_app)
    return [
        Variant("plain Flask", _request_body(_flask_app())),
        Variant("FlaskInstrumentor", _request_body(otel_app), bare.force_flush),
        Variant("threadline.instrument", _request_body(threadline_app), ours.force_flush),
    ]


def _time_loop(variant: Variant, n: int) -> float:
    with variant.around():
        start = time.perf_counter()
        for _ in range(n):
            variant.body()
        variant.flush()
        return (time.perf_counter() - start) / n * 1e6


def _child(group: str, endpoint: str, n: int, rounds: int) -> None:
    if group == "requests":
        variants = _request_variants(endpoint)
    else:
        variants = _span_variants(endpoint, null_exporter=group == "spans-null")
    for variant in variants:  # warm-up: imports, caches, first export connections
        _time_loop(variant, max(1, n // 10))
    results: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            results[variant.name].append(_time_loop(variant, n))
    print(json.dumps(results))


# --- parent side: loopback collector, one subprocess per group, report -------------------


class _DiscardingCollector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and throws them away (the server half is not measured here)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _run_group(group: str, endpoint: str, n: int, rounds: int) -> dict[str, list[float]]:
    command = [sys.executable, __file__, "--child", group, "--endpoint", endpoint]
    completed = subprocess.run(
        [*command, "--n", str(n), "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{group} failed:\n{completed.stderr}")
    results: dict[str, list[float]] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


def _report(group: Group, n: int, results: dict[str, list[float]]) -> None:
    print(f"\n{group.title} ({n} per loop)")
    for name, values in results.items():
        print(
            f"  {name:26s} {statistics.median(values):9.2f} {group.unit}"
            f"   (min {min(values):.2f}, max {max(values):.2f})"
        )
    for comparison in group.comparisons:
        bare, ours = results[comparison.bare], results[comparison.threadline]
        ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
        added = statistics.median(o - b for o, b in zip(ours, bare, strict=True))
        print(
            f"  {comparison.label:34s} ratio {ratio:.3f}"
            f"  (adds {added:+.2f} {group.unit}, {(ratio - 1) * 100:+.1f}%)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=5_000, help="spans per timed loop")
    parser.add_argument("--requests", type=int, default=500, help="requests per timed loop")
    parser.add_argument("--rounds", type=int, default=30, help="timed loops per variant")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.endpoint, args.n, args.rounds)
        return

    server = ThreadingHTTPServer(("127.0.0.1", 0), _DiscardingCollector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    sizes = {"spans-null": args.spans, "spans-otlp": args.spans, "requests": args.requests}
    try:
        results = {g: _run_group(g, endpoint, sizes[g], args.rounds) for g in GROUPS}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    print(f"Python {sys.version.split()[0]}; {args.rounds} interleaved rounds; flush included")
    for name, group in GROUPS.items():
        _report(group, sizes[name], results[name])


if __name__ == "__main__":
    main()
