"""What a span and an instrumented request cost with Threadline, against the stock SDK.

Run: ``python bench/sdk_overhead.py [--spans N] [--requests N] [--rounds K]
[--groups requests,client-httpx,...] [--no-memory]``

The baseline everywhere is the stock SDK as OpenTelemetry's docs set it up:
TracerProvider + ``BatchSpanProcessor`` + the stock ``OTLPSpanExporter``, exporting over
OTLP/HTTP to a loopback collector run by this script. Groups, each in its own
subprocess (``configure()`` sets the global TracerProvider, which a process can do once):

- spans: start, 3 attributes, end under ``start_as_current_span``, with the stock SDK;
  with Threadline's default (fast) pipeline inside a ``journey`` (session + user) and
  outside one; with Threadline's ``pipeline = "otel"`` (the SDK's TracerProvider with
  Threadline's export processor: the pipeline before the fast one, built locally); and
  two floors: the API's no-op tracer, and a bare object (a slotted object holding the
  name and attributes, appended to a bounded deque: about the least any recorder pays);
- tracing off: the API's no-op tracer, and ``configure(enabled=False)``;
- Flask requests through werkzeug's test client, and FastAPI requests driven straight
  through the ASGI app on one event loop (``async def`` route, so all the work is on the
  measured thread): plain app, OpenTelemetry's instrumentor + stock SDK, and
  ``threadline.instrument(app)``; for Flask (and Django) also ``threadline.instrument`` with
  ``server_instrumentation = "otel"`` (the stock instrumentor on Threadline's pipeline
  plus the journey hooks: what it did before it had server spans of its own); requests
  carry ``X-Session-Id`` (a journey);
- Django requests (a one-view project's ``WSGIHandler`` called with a prepared environ),
  and GETs through a ``requests.Session`` and an ``httpx.Client`` (inside a journey) to
  a keep-alive loopback server in the child process: plain, OpenTelemetry's
  instrumentor + stock SDK, and what ``threadline.instrument()`` turns on (built in
  ``sdk_overhead_clients.py``; these instrumentations patch globally, so each variant
  turns its own on and off around its timed loop);
- memory per queued span: ``tracemalloc`` growth while 20,000 finished spans wait in
  the stock ``BatchSpanProcessor``'s queue and in Threadline's export queue.

The variants are built in ``sdk_overhead_variants.py``. Two costs are measured per variant:

- *caller*: CPU time of the thread that makes the spans (``time.thread_time``), over
  the loop alone — what the service's own request threads pay;
- *total*: CPU time of the whole process (``time.process_time``: every thread,
  including the export thread) over the loop plus a flush — everything tracing costs.

Within a group the variants run interleaved, many short rounds, in one process, so
machine load drifting during the run hits every variant alike, and ratios are taken
round by round (the median is printed). Queues are sized so nothing is dropped
(dropping would make export look free). For requests the ratio compares what
instrumentation *adds* to the plain app's cost, and the stock variants run with the
stock propagator (W3C trace context + baggage), as a service traced by OpenTelemetry
alone does. Goals (issue 17): caller per span
≤ 1/3 of stock, total per exported span ≤ 1/4, added per request ≤ 1/2 of what
OpenTelemetry's instrumentation adds, memory per queued span ≤ 1/4.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import sdk_overhead_clients as clients
import sdk_overhead_variants as parts
from sdk_overhead_variants import (
    BARE_OBJECT,
    FAST,
    FAST_JOURNEY,
    FASTAPI_SAME_SPANS,
    FLASK_STOCK_ON_OURS,
    HOT_PATHS,
    MEMORY_SPANS,
    NOOP,
    OTEL_PIPELINE,
    STOCK,
    Variant,
)

Results = dict[str, dict[str, list[float]]]  # variant -> "caller"/"total" -> per round


@dataclass(frozen=True, slots=True)
class Comparison:
    """``threadline`` against ``bare`` (minus ``plain`` on both sides, when given)."""

    label: str
    bare: str
    threadline: str
    goal: float | None = None
    plain: str | None = None
    measures: tuple[str, ...] = ("caller", "total")


@dataclass(frozen=True, slots=True)
class Group:
    title: str
    unit: str
    comparisons: list[Comparison] = field(default_factory=list)
    floors: tuple[str, ...] = ()


GROUPS: Final = {
    "spans-otlp": Group(
        "Per span (start, 3 attributes, end), OTLP/HTTP to a loopback collector",
        "µs/span",
        [
            Comparison(
                "threadline / stock, journey (caller)",
                STOCK,
                FAST_JOURNEY,
                1 / 3,
                measures=("caller",),
            ),
            Comparison(
                "threadline / stock, journey (total)",
                STOCK,
                FAST_JOURNEY,
                1 / 4,
                measures=("total",),
            ),
            Comparison("threadline / stock, no journey", STOCK, FAST),
            Comparison('pipeline="otel" / stock, journey (before)', STOCK, OTEL_PIPELINE),
            Comparison(
                "threadline / no-op API floor (caller)", NOOP, FAST_JOURNEY, measures=("caller",)
            ),
        ],
        floors=(NOOP, BARE_OBJECT),
    ),
    "hot-paths": Group(
        "Hot paths one at a time (caller CPU; the total column is the same work plus flush)",
        "µs/op",
        [
            Comparison(
                f"{path}: threadline / stock",
                f"{path}, stock",
                f"{path}, threadline",
                measures=("caller",),
            )
            for path in HOT_PATHS
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
        [
            Comparison(
                "added: threadline / OpenTelemetry (caller)",
                "FlaskInstrumentor",
                "threadline.instrument",
                1 / 2,
                plain="plain Flask",
                measures=("caller",),
            ),
            Comparison(
                "added: threadline / OpenTelemetry (total)",
                "FlaskInstrumentor",
                "threadline.instrument",
                plain="plain Flask",
                measures=("total",),
            ),
            Comparison(
                'added: server_instrumentation="otel" / OTel (caller)',
                "FlaskInstrumentor",
                FLASK_STOCK_ON_OURS,
                plain="plain Flask",
                measures=("caller",),
            ),
        ],
    ),
    "requests-fastapi": Group(
        "Per FastAPI request (ASGI app driven on one event loop), OTLP/HTTP to a loopback "
        "collector",
        "µs/request",
        [
            Comparison(
                "added: threadline / OpenTelemetry (caller)",
                "FastAPIInstrumentor",
                "threadline.instrument",
                1 / 2,
                plain="plain FastAPI",
                measures=("caller",),
            ),
            Comparison(
                "added: threadline / OpenTelemetry, same spans (caller)",
                FASTAPI_SAME_SPANS,
                "threadline.instrument",
                plain="plain FastAPI",
                measures=("caller",),
            ),
            Comparison(
                "added: threadline / OpenTelemetry (total)",
                "FastAPIInstrumentor",
                "threadline.instrument",
                plain="plain FastAPI",
                measures=("total",),
            ),
        ],
    ),
    **{
        group: Group(
            title,
            "µs/request",
            [
                Comparison(
                    "added: threadline / OpenTelemetry (caller)",
                    clients.STOCK_INSTRUMENTOR,
                    clients.THREADLINE,
                    1 / 2,
                    plain=clients.PLAIN,
                    measures=("caller",),
                ),
                Comparison(
                    "added: threadline / OpenTelemetry (total)",
                    clients.STOCK_INSTRUMENTOR,
                    clients.THREADLINE,
                    plain=clients.PLAIN,
                    measures=("total",),
                ),
                *(
                    [
                        Comparison(
                            'added: server_instrumentation="otel" / OTel (caller)',
                            clients.STOCK_INSTRUMENTOR,
                            clients.STOCK_ON_THREADLINE,
                            plain=clients.PLAIN,
                            measures=("caller",),
                        )
                    ]
                    if group == "requests-django"
                    else []
                ),
            ],
        )
        for group, title in (
            (
                "requests-django",
                "Per Django request (WSGI handler called with a prepared environ), OTLP/HTTP "
                "to a loopback collector",
            ),
            ("client-requests", "Per requests.Session GET to a keep-alive loopback server"),
            ("client-httpx", "Per httpx.Client GET to a keep-alive loopback server"),
        )
    },
}

CHILD_VARIANTS: Final = {
    "requests": parts.request_variants,
    "requests-fastapi": parts.fastapi_variants,
    "requests-django": clients.django_variants,
    "client-requests": clients.requests_variants,
    "client-httpx": clients.httpx_variants,
    "spans-off": parts.off_variants,
    "hot-paths": parts.hot_path_variants,
    "spans-otlp": parts.span_variants,
}


# --- child side: one group per process ---------------------------------------------------


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
    if group == "memory":
        print(json.dumps(parts.memory(endpoint)))
        return
    variants = CHILD_VARIANTS[group](endpoint)
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


def _verdict(ratio: float, goal: float | None) -> str:
    if goal is None:
        return ""
    return f"  goal ≤ {goal:.3f}: {'met' if ratio <= goal else 'MISSED'}"


def _report(group: Group, n: int, results: Results) -> None:
    print(f"\n{group.title} ({n} per loop)")
    print(f"  {'':36s} {'caller CPU':>12s} {'total CPU':>12s}   ({group.unit}, median)")
    for name, measures in results.items():
        total = "" if name in group.floors else f"{statistics.median(measures['total']):12.2f}"
        print(f"  {name:36s} {statistics.median(measures['caller']):12.2f} {total}")
    for comparison in group.comparisons:
        for measure in comparison.measures:
            bare = results[comparison.bare][measure]
            ours = results[comparison.threadline][measure]
            plain = results[comparison.plain][measure] if comparison.plain else [0.0] * len(bare)
            ratio = statistics.median(
                (o - p) / (b - p) for o, b, p in zip(ours, bare, plain, strict=True)
            )
            added = statistics.median(o - b for o, b in zip(ours, bare, strict=True))
            label = (
                comparison.label if "(" in comparison.label else f"{comparison.label} ({measure})"
            )
            print(
                f"  {label:50s} ratio {ratio:.3f}"
                f"  ({added:+.2f} {group.unit}){_verdict(ratio, comparison.goal)}"
            )


def _report_memory(results: Results) -> None:
    print(f"\nMemory per queued span ({MEMORY_SPANS} spans waiting for export, tracemalloc)")
    values = {name: measures["bytes"][0] for name, measures in results.items()}
    for name, value in values.items():
        print(f"  {name:36s} {value:8.0f} B")
    stock, ours = values.values()
    print(f"  {'threadline / stock':36s} ratio {ours / stock:.3f}{_verdict(ours / stock, 1 / 4)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=5_000, help="spans per timed loop")
    parser.add_argument("--requests", type=int, default=500, help="requests per timed loop")
    parser.add_argument("--rounds", type=int, default=30, help="timed loops per variant")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--groups", help=f"comma-separated groups to run (default all: {', '.join(GROUPS)})"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory group")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.endpoint, args.n, args.rounds)
        return

    server = ThreadingHTTPServer(("127.0.0.1", 0), _DiscardingCollector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    sizes = {
        "spans-otlp": args.spans,
        "hot-paths": args.spans,
        "spans-off": args.spans,
        "requests": args.requests,
        "requests-fastapi": args.requests,
        "requests-django": args.requests,
        "client-requests": args.requests,
        "client-httpx": args.requests,
    }
    try:
        chosen = args.groups.split(",") if args.groups else list(GROUPS)
        unknown = sorted(set(chosen) - set(GROUPS))
        if unknown:
            raise SystemExit(f"unknown groups {unknown}; known: {', '.join(GROUPS)}")
        results = {g: _run_group(g, endpoint, sizes[g], args.rounds) for g in chosen}
        memory = None if args.no_memory else _run_group("memory", endpoint, MEMORY_SPANS, 1)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    print(
        f"Python {sys.version.split()[0]}; {args.rounds} interleaved rounds; "
        "caller = span-making thread, loop only; total = whole process, loop + flush"
    )
    for name in results:
        _report(GROUPS[name], sizes[name], results[name])
    if memory is not None:
        _report_memory(memory)


if __name__ == "__main__":
    main()
