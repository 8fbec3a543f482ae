"""What a span and an instrumented request cost with Threadline, against the stock SDK.

Run: ``python bench/sdk_overhead.py [--spans N] [--requests N] [--rounds K]``

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
  ``threadline.instrument(app)``; requests carry ``X-Session-Id`` (a journey);
- memory per queued span: ``tracemalloc`` growth while 20,000 finished spans wait in
  the stock ``BatchSpanProcessor``'s queue and in Threadline's export queue.

Two costs are measured per variant:

- *caller*: CPU time of the thread that makes the spans (``time.thread_time``), over
  the loop alone — what the service's own request threads pay;
- *total*: CPU time of the whole process (``time.process_time``: every thread,
  including the export thread) over the loop plus a flush — everything tracing costs.

Within a group the variants run interleaved, many short rounds, in one process, so
machine load drifting during the run hits every variant alike, and ratios are taken
round by round (the median is printed). Queues are sized so nothing is dropped
(dropping would make export look free). For requests the ratio compares what
instrumentation *adds* to the plain app's cost. Goals (issue 17): caller per span
≤ 1/3 of stock, total per exported span ≤ 1/4, added per request ≤ 1/2 of what
OpenTelemetry's instrumentation adds, memory per queued span ≤ 1/4.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import deque
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
MEMORY_SPANS: Final = 20_000


Results = dict[str, dict[str, list[float]]]  # variant -> "caller"/"total" -> per round


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    body: Callable[[], None]
    flush: Callable[[], object] = lambda: None
    around: Callable[[], AbstractContextManager[object]] = nullcontext


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


STOCK: Final = "stock SDK (batch + OTLP)"
FAST_JOURNEY: Final = "threadline, journey"
FAST: Final = "threadline, no journey"
OTEL_PIPELINE: Final = 'threadline pipeline="otel", journey'
NOOP: Final = "floor: no-op API"
BARE_OBJECT: Final = "floor: bare object"
FASTAPI_SAME_SPANS: Final = "FastAPIInstrumentor, no send/receive"

HOT_PATHS: Final = (
    "start_span + end",
    "set_attribute",
    "with start_as_current_span",
    "trace + span id",
    "root sampling decision",
    "inject (3 headers)",
    "extract (3 headers)",
)

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
}


# --- child side: one group per process ---------------------------------------------------


def _otlp_exporter(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def _bare_provider(exporter: Any) -> Any:
    """The stock SDK as OpenTelemetry's docs set it up, with Threadline's batch settings."""
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


def _settings(endpoint: str, enabled: bool = True, pipeline: str = "fast") -> Any:
    from threadline.sdk import setup

    return setup.load_settings(
        {
            "service_name": "bench",
            "endpoint": endpoint,
            "enabled": enabled,
            "queue_size": QUEUE_SIZE,
            "export_delay_ms": EXPORT_DELAY_MS,
            "export_batch_size": BATCH_SIZE,
            "user_id_key": "bench-key",
            "stats_interval_s": 0,  # redaction stays on: the default a service runs with
            "sampling_poll_s": 0,
            "pipeline": pipeline,
        }
    )


def _threadline_provider(endpoint: str, enabled: bool = True) -> Any:
    """Threadline's configure() pipeline (the default, fast one), exporting to the collector."""
    from threadline.sdk import setup

    return setup.install(_settings(endpoint, enabled)).tracer_provider


def _otel_pipeline_provider(endpoint: str) -> Any:
    """What ``pipeline = "otel"`` installs (the SDK's provider, Threadline's sampler and
    export processor), built as a local provider beside the global fast one."""
    from opentelemetry.sdk.trace import TracerProvider

    from threadline.sdk import setup
    from threadline.sdk.export import pipeline as export_pipeline
    from threadline.sdk.sampling.head import head_sampling

    settings = _settings(endpoint, pipeline="otel")
    provider = TracerProvider(
        resource=setup._resource(settings), sampler=head_sampling(settings).sampler
    )
    for processor in export_pipeline.export_processors(
        settings, provider, setup.active_pseudonymizer()
    ):
        provider.add_span_processor(processor)
    return provider


def _span_body(tracer: Any) -> Callable[[], None]:
    def one_span() -> None:
        with tracer.start_as_current_span("work", attributes=ATTRIBUTES):
            pass

    return one_span


class _BareRecord:
    __slots__ = ("attributes", "name")

    def __init__(self, name: str, attributes: dict[str, object]) -> None:
        self.name = name
        self.attributes = attributes


def _bare_object_body() -> Callable[[], None]:
    """The floor: a record of the span's name and attributes, queued in a bounded deque."""
    queue: deque[_BareRecord] = deque(maxlen=QUEUE_SIZE)
    append = queue.append

    def one_object() -> None:
        append(_BareRecord("work", dict(ATTRIBUTES)))

    return one_object


def _in_journey() -> AbstractContextManager[object]:
    import threadline

    return threadline.journey(session_id="s-8f3a2c", user_id="customer-42")


def _span_variants(endpoint: str) -> list[Variant]:
    from opentelemetry import trace

    bare = _bare_provider(_otlp_exporter(endpoint))
    ours = _threadline_provider(endpoint)
    before = _otel_pipeline_provider(endpoint)
    ours_tracer = ours.get_tracer("bench")
    return [
        Variant(STOCK, _span_body(bare.get_tracer("bench")), bare.force_flush),
        Variant(FAST_JOURNEY, _span_body(ours_tracer), ours.force_flush, _in_journey),
        Variant(FAST, _span_body(ours_tracer), ours.force_flush),
        Variant(
            OTEL_PIPELINE, _span_body(before.get_tracer("bench")), before.force_flush, _in_journey
        ),
        Variant(NOOP, _span_body(trace.NoOpTracerProvider().get_tracer("bench"))),
        Variant(BARE_OBJECT, _bare_object_body()),
    ]


def _hot_path_variants(endpoint: str) -> list[Variant]:
    """Each hot path alone, with the stock SDK's and Threadline's (fast pipeline) parts."""
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import ParentBased
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from threadline.sdk.fast import ids
    from threadline.sdk.sampling.rule_sampler import RuleSampler

    bare = _bare_provider(_otlp_exporter(endpoint))
    ours = _threadline_provider(endpoint)
    tracers = {"stock": bare.get_tracer("bench"), "threadline": ours.get_tracer("bench")}
    flushes = {"stock": bare.force_flush, "threadline": ours.force_flush}
    live = {name: tracer.start_span("live") for name, tracer in tracers.items()}
    generator = RandomIdGenerator()
    stock_sampler = ParentBased(RuleSampler("bench"))
    pipeline = ours._pipeline
    propagators = {
        "stock": CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]),
        "threadline": propagate.get_global_textmap(),
    }
    # A middle hop: a sampled remote parent with a tracestate, the journey in baggage.
    hop_carrier = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "baggage": "session.id=s-8f3a2c,user.id=u_3f9a1c7e,journey.id=checkout",
    }
    hop_contexts = {name: p.extract(hop_carrier) for name, p in propagators.items()}

    def start_end(tracer: Any) -> Callable[[], None]:
        return lambda: tracer.start_span("work").end()

    def set_attribute(span: Any) -> Callable[[], None]:
        return lambda: span.set_attribute("order.id", 1234)

    def current(tracer: Any) -> Callable[[], None]:
        def body() -> None:
            with tracer.start_as_current_span("work"):
                pass

        return body

    def inject(name: str) -> Callable[[], None]:
        propagator, ctx = propagators[name], hop_contexts[name]
        return lambda: propagator.inject({}, ctx)

    def extract(name: str) -> Callable[[], None]:
        propagator = propagators[name]

        def body() -> None:
            propagator.extract(hop_carrier)

        return body

    trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736

    def stock_ids() -> None:
        generator.generate_trace_id()
        generator.generate_span_id()

    def threadline_ids() -> None:
        ids.new_trace_id()
        ids.new_span_id()

    def stock_decision() -> None:
        stock_sampler.should_sample(None, trace_id, "work")

    def threadline_decision() -> None:
        pipeline.roots_all_sampled()

    bodies: dict[str, dict[str, Callable[[], None]]] = {
        "start_span + end": {n: start_end(t) for n, t in tracers.items()},
        "set_attribute": {n: set_attribute(s) for n, s in live.items()},
        "with start_as_current_span": {n: current(t) for n, t in tracers.items()},
        "trace + span id": {"stock": stock_ids, "threadline": threadline_ids},
        "root sampling decision": {"stock": stock_decision, "threadline": threadline_decision},
        "inject (3 headers)": {n: inject(n) for n in propagators},
        "extract (3 headers)": {n: extract(n) for n in propagators},
    }
    return [
        Variant(f"{path}, {name}", body, flushes[name])
        for path in HOT_PATHS
        for name, body in bodies[path].items()
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


def _fastapi_app() -> Any:
    import fastapi

    app = fastapi.FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app


def _asgi_body(app: Any) -> Callable[[], None]:
    """One GET through the ASGI app, run to completion on this thread's event loop."""
    import asyncio

    loop = asyncio.new_event_loop()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items/7",
        "raw_path": b"/items/7",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"x-session-id", b"s-8f3a2c")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def request() -> None:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)
        if statuses != [200]:
            raise RuntimeError(f"bench request failed: {statuses}")

    def one_request() -> None:
        loop.run_until_complete(request())

    return one_request


def _fastapi_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    import threadline

    bare = _bare_provider(_otlp_exporter(endpoint))
    otel_app = _fastapi_app()
    FastAPIInstrumentor.instrument_app(otel_app, tracer_provider=bare)
    ours = _threadline_provider(endpoint)
    threadline_app = _fastapi_app()
    threadline.instrument(threadline_app)
    # threadline.instrument() leaves out the ASGI send/receive spans: the stock
    # instrumentor told to do the same is printed too, so the span pipelines compare alike.
    same_spans = _fastapi_app()
    FastAPIInstrumentor.instrument_app(
        same_spans, tracer_provider=bare, exclude_spans=["receive", "send"]
    )
    return [
        Variant("plain FastAPI", _asgi_body(_fastapi_app())),
        Variant("FastAPIInstrumentor", _asgi_body(otel_app), bare.force_flush),
        Variant(FASTAPI_SAME_SPANS, _asgi_body(same_spans), bare.force_flush),
        Variant("threadline.instrument", _asgi_body(threadline_app), ours.force_flush),
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


def _memory(endpoint: str) -> dict[str, dict[str, list[float]]]:
    """Bytes per span held in each pipeline's export queue (nothing exported meanwhile)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from threadline.sdk.export import pipeline as export_pipeline
    from threadline.sdk.fast import FastTracerProvider
    from threadline.sdk.sampling.head import head_sampling
    from threadline.sdk.setup import _resource

    settings = _settings(endpoint)
    never = 3_600_000  # ms: the queue is not drained while we count

    def held(make: Callable[[], tuple[Any, Callable[[], object]]]) -> float:
        provider, stop = make()
        tracer = provider.get_tracer("bench")
        with _in_journey():
            for _ in range(200):  # warm: tracer caches, first records
                with tracer.start_as_current_span("warm", attributes=ATTRIBUTES):
                    pass
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for index in range(MEMORY_SPANS):
                with tracer.start_as_current_span("work", attributes={**ATTRIBUTES, "i": index}):
                    pass
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        stop()
        return (after - before) / MEMORY_SPANS

    def stock() -> tuple[Any, Callable[[], object]]:
        provider = TracerProvider(resource=_resource(settings))
        processor = BatchSpanProcessor(
            _otlp_exporter(endpoint),
            max_queue_size=MEMORY_SPANS * 2,
            schedule_delay_millis=never,
            max_export_batch_size=MEMORY_SPANS * 2,
        )
        provider.add_span_processor(processor)
        return provider, lambda: None

    def fast() -> tuple[Any, Callable[[], object]]:
        sampling = head_sampling(settings)
        provider = FastTracerProvider(
            _resource(settings),
            sampling.sampler,
            sampling.rule_sampler,
            str,
            shutdown_on_exit=False,
        )
        held_settings = dataclasses.replace(
            settings,
            queue_size=MEMORY_SPANS * 2,
            export_batch_size=MEMORY_SPANS * 2,
            export_delay_ms=never,
        )
        processor = export_pipeline.export_processor(
            held_settings, provider.resource, None, export_pipeline.export_redactor(settings)
        )
        provider.set_export(processor)
        return provider, lambda: None

    return {
        "stock SDK (ReadableSpan queue)": {"bytes": [held(stock)]},
        "threadline (compact record queue)": {"bytes": [held(fast)]},
    }


def _child(group: str, endpoint: str, n: int, rounds: int) -> None:
    if group == "memory":
        print(json.dumps(_memory(endpoint)))
        return
    if group == "requests":
        variants = _request_variants(endpoint)
    elif group == "requests-fastapi":
        variants = _fastapi_variants(endpoint)
    elif group == "spans-off":
        variants = _off_variants(endpoint)
    elif group == "hot-paths":
        variants = _hot_path_variants(endpoint)
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
    }
    try:
        results = {g: _run_group(g, endpoint, sizes[g], args.rounds) for g in GROUPS}
        memory = _run_group("memory", endpoint, MEMORY_SPANS, 1)
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
    _report_memory(memory)


if __name__ == "__main__":
    main()
