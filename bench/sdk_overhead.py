"""What Threadline adds to the OpenTelemetry SDK, per span and per instrumented Flask request.

Run: ``python bench/sdk_overhead.py [--spans N] [--requests N] [--rounds K]``

Groups, each in its own subprocess (Threadline's ``configure()`` sets the global
TracerProvider, which a process can do once):

- spans, OTLP/HTTP to a loopback collector run by this script: start+end a span with
  three attributes under ``start_as_current_span`` with the bare SDK —
  TracerProvider + ``BatchSpanProcessor`` + the stock ``OTLPSpanExporter`` — and with
  Threadline's ``configure()`` pipeline (its own processor, compact queue and encoder,
  redaction on as by default: the export worker applies it before encoding),
  inside a ``journey`` (session + user) and outside one;
- tracing off: the API's no-op tracer, and ``configure(enabled=False)`` (what a
  service pays when tracing is switched off for its environment);
- Flask requests through werkzeug's test client, exporting OTLP to the collector:
  plain app, ``FlaskInstrumentor`` + bare SDK, ``threadline.instrument(app)``; the
  requests carry ``X-Session-Id``, so Threadline's inbound hook starts a journey.

Two costs are measured per variant:

- *caller*: CPU time of the thread that makes the spans (``time.thread_time``), over
  the loop alone — what the service's own request threads pay;
- *total*: CPU time of the whole process (``time.process_time``: every thread,
  including the export thread) over the loop plus a flush — everything tracing costs.

Within a group the variants run interleaved, many short rounds, in one process: the
bare SDK's provider is a local one (its tracer is used directly, which costs the same
per span as a global one), so machine load drifting during the run hits every variant
alike, and comparisons are made round by round. Queues are sized so nothing is
dropped (dropping would make export look free).
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
from collections.abc import Callable
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


Results = dict[str, dict[str, list[float]]]  # variant -> "caller"/"total" -> per round


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
    "spans-otlp": Group(
        "Per span, OTLP/HTTP to a loopback collector",
        "µs/span",
        [
            Comparison("threadline / bare, in a journey", "bare SDK", "threadline, journey"),
            Comparison("threadline / bare, no journey", "bare SDK", "threadline, no journey"),
        ],
    ),
    "spans-off": Group(
        "Per span, tracing off",
        "µs/span",
        [Comparison("disabled / no-op API", "no tracing", "threadline, enabled=false")],
    ),
    "requests": Group(
        "Per Flask request (werkzeug test client), OTLP/HTTP to a loopback collector",
        "µs/request",
        [Comparison("threadline / bare OTel", "FlaskInstrumentor", "threadline.instrument")],
    ),
}


# --- child side: one group per process ---------------------------------------------------


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


def _threadline_provider(endpoint: str, enabled: bool = True) -> Any:
    """Threadline's configure() pipeline, exporting to the loopback collector."""
    from threadline.sdk import setup

    settings = setup.load_settings(
        {
            "service_name": "bench",
            "endpoint": endpoint,
            "enabled": enabled,
            "queue_size": QUEUE_SIZE,
            "export_delay_ms": EXPORT_DELAY_MS,
            "export_batch_size": BATCH_SIZE,
            "user_id_key": "bench-key",
            "stats_interval_s": 0,  # redaction stays on: the default a service runs with
        }
    )
    return setup.install(settings).tracer_provider


def _span_body(tracer: Any) -> Callable[[], None]:
    def one_span() -> None:
        with tracer.start_as_current_span("work", attributes=ATTRIBUTES):
            pass

    return one_span


def _span_variants(endpoint: str) -> list[Variant]:
    import threadline

    bare = _bare_provider(_otlp_exporter(endpoint))
    ours = _threadline_provider(endpoint)

    def in_journey() -> AbstractContextManager[object]:
        return threadline.journey(session_id="s-8f3a2c", user_id="customer-42")

    ours_tracer = ours.get_tracer("bench")
    return [
        Variant("bare SDK", _span_body(bare.get_tracer("bench")), bare.force_flush),
        Variant("threadline, journey", _span_body(ours_tracer), ours.force_flush, in_journey),
        Variant("threadline, no journey", _span_body(ours_tracer), ours.force_flush),
    ]


def _off_variants(endpoint: str) -> list[Variant]:
    from opentelemetry import trace

    _threadline_provider(endpoint, enabled=False)
    return [
        Variant("no tracing", _span_body(trace.NoOpTracerProvider().get_tracer("bench"))),
        Variant("threadline, enabled=false", _span_body(trace.get_tracer("bench"))),
    ]


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
    ours = _threadline_provider(endpoint)
    threadline_app = _flask_app()
    threadline.instrument(threadline_app)
    return [
        Variant("plain Flask", _request_body(_flask_app())),
        Variant("FlaskInstrumentor", _request_body(otel_app), bare.force_flush),
        Variant("threadline.instrument", _request_body(threadline_app), ours.force_flush),
    ]


def _time_loop(variant: Variant, n: int) -> tuple[float, float]:
    """(caller-thread CPU, whole-process CPU including the flush), µs per iteration."""
    with variant.around():
        process_start = time.process_time()
        thread_start = time.thread_time()
        for _ in range(n):
            variant.body()
        caller = time.thread_time() - thread_start
        variant.flush()
        total = time.process_time() - process_start
    return caller / n * 1e6, total / n * 1e6


def _child(group: str, endpoint: str, n: int, rounds: int) -> None:
    if group == "requests":
        variants = _request_variants(endpoint)
    elif group == "spans-off":
        variants = _off_variants(endpoint)
    else:
        variants = _span_variants(endpoint)
    for variant in variants:  # warm-up: imports, caches, first export connections
        _time_loop(variant, max(1, n // 10))
    results: dict[str, dict[str, list[float]]] = {
        v.name: {"caller": [], "total": []} for v in variants
    }
    for _ in range(rounds):
        for variant in variants:
            caller, total = _time_loop(variant, n)
            results[variant.name]["caller"].append(caller)
            results[variant.name]["total"].append(total)
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


def _run_group(group: str, endpoint: str, n: int, rounds: int) -> Results:
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
    results: Results = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


def _report(group: Group, n: int, results: Results) -> None:
    print(f"\n{group.title} ({n} per loop)")
    print(f"  {'':26s} {'caller CPU':>12s} {'total CPU':>12s}   ({group.unit}, median)")
    for name, measures in results.items():
        print(
            f"  {name:26s} {statistics.median(measures['caller']):12.2f}"
            f" {statistics.median(measures['total']):12.2f}"
        )
    for comparison in group.comparisons:
        for measure in ("caller", "total"):
            bare = results[comparison.bare][measure]
            ours = results[comparison.threadline][measure]
            ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
            added = statistics.median(o - b for o, b in zip(ours, bare, strict=True))
            print(
                f"  {comparison.label + ' (' + measure + ')':44s} ratio {ratio:.3f}"
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
    sizes = {"spans-otlp": args.spans, "spans-off": args.spans, "requests": args.requests}
    try:
        results = {g: _run_group(g, endpoint, sizes[g], args.rounds) for g in GROUPS}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    print(
        f"Python {sys.version.split()[0]}; {args.rounds} interleaved rounds; "
        "caller = span-making thread, loop only; total = whole process, loop + flush"
    )
    for name, group in GROUPS.items():
        _report(group, sizes[name], results[name])


if __name__ == "__main__":
    main()
