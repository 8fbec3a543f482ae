"""The variants ``bench/sdk_overhead.py`` times: providers, span and request bodies, floors.

Imported by the benchmark's child processes (one per group); each function returns the
variants of one group, built in that process (a process can set the global
TracerProvider once).
"""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final

ATTRIBUTES: Final = {"order.id": 1234, "order.items": 3, "shop.region": "eu-west"}
# Larger than the spans of one timed loop, so nothing is dropped while we measure.
QUEUE_SIZE: Final = 65_536
EXPORT_DELAY_MS: Final = 1000
BATCH_SIZE: Final = 512
SESSION_HEADER: Final = {"X-Session-Id": "s-8f3a2c"}
MEMORY_SPANS: Final = 20_000


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    body: Callable[[], None]
    flush: Callable[[], object] = lambda: None
    around: Callable[[], AbstractContextManager[object]] = nullcontext


STOCK: Final = "stock SDK (batch + OTLP)"
FAST_JOURNEY: Final = "threadline, journey"
FAST: Final = "threadline, no journey"
OTEL_PIPELINE: Final = 'threadline pipeline="otel", journey'
NOOP: Final = "floor: no-op API"
BARE_OBJECT: Final = "floor: bare object"
FASTAPI_SAME_SPANS: Final = "FastAPIInstrumentor, no send/receive"
FLASK_STOCK_ON_OURS: Final = 'threadline.instrument, server_instrumentation="otel"'

HOT_PATHS: Final = (
    "start_span + end",
    "set_attribute",
    "with start_as_current_span",
    "trace + span id",
    "root sampling decision",
    "inject (3 headers)",
    "extract (3 headers)",
)


@contextmanager
def stock_propagator() -> Iterator[None]:
    """The propagator a service gets from OpenTelemetry alone, for the length of a loop."""
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


def otlp_exporter(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def bare_provider(exporter: Any) -> Any:
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


def sdk_settings(endpoint: str, enabled: bool = True, pipeline: str = "fast") -> Any:
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


def threadline_provider(endpoint: str, enabled: bool = True) -> Any:
    """Threadline's configure() pipeline (the default, fast one), exporting to the collector."""
    from threadline.sdk import setup

    return setup.install(sdk_settings(endpoint, enabled)).tracer_provider


def otel_pipeline_provider(endpoint: str) -> Any:
    """What ``pipeline = "otel"`` installs (the SDK's provider, Threadline's sampler and
    export processor), built as a local provider beside the global fast one."""
    from opentelemetry.sdk.trace import TracerProvider

    from threadline.sdk import setup
    from threadline.sdk.export import pipeline as export_pipeline
    from threadline.sdk.sampling.head import head_sampling

    settings = sdk_settings(endpoint, pipeline="otel")
    provider = TracerProvider(
        resource=setup.service_resource(settings), sampler=head_sampling(settings).sampler
    )
    for processor in export_pipeline.export_processors(
        settings, provider, setup.active_pseudonymizer()
    ):
        provider.add_span_processor(processor)
    return provider


def span_body(tracer: Any) -> Callable[[], None]:
    def one_span() -> None:
        with tracer.start_as_current_span("work", attributes=ATTRIBUTES):
            pass

    return one_span


class _BareRecord:
    __slots__ = ("attributes", "name")

    def __init__(self, name: str, attributes: dict[str, object]) -> None:
        self.name = name
        self.attributes = attributes


def bare_object_body() -> Callable[[], None]:
    """The floor: a record of the span's name and attributes, queued in a bounded deque."""
    queue: deque[_BareRecord] = deque(maxlen=QUEUE_SIZE)
    append = queue.append

    def one_object() -> None:
        append(_BareRecord("work", dict(ATTRIBUTES)))

    return one_object


def in_journey() -> AbstractContextManager[object]:
    import threadline

    return threadline.journey(session_id="s-8f3a2c", user_id="customer-42")


def span_variants(endpoint: str) -> list[Variant]:
    from opentelemetry import trace

    bare = bare_provider(otlp_exporter(endpoint))
    ours = threadline_provider(endpoint)
    before = otel_pipeline_provider(endpoint)
    ours_tracer = ours.get_tracer("bench")
    return [
        Variant(STOCK, span_body(bare.get_tracer("bench")), bare.force_flush),
        Variant(FAST_JOURNEY, span_body(ours_tracer), ours.force_flush, in_journey),
        Variant(FAST, span_body(ours_tracer), ours.force_flush),
        Variant(
            OTEL_PIPELINE, span_body(before.get_tracer("bench")), before.force_flush, in_journey
        ),
        Variant(NOOP, span_body(trace.NoOpTracerProvider().get_tracer("bench"))),
        Variant(BARE_OBJECT, bare_object_body()),
    ]


def hot_path_variants(endpoint: str) -> list[Variant]:
    """Each hot path alone, with the stock SDK's and Threadline's (fast pipeline) parts."""
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import ParentBased
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from threadline.sdk.fast import ids
    from threadline.sdk.sampling.rule_sampler import RuleSampler

    bare = bare_provider(otlp_exporter(endpoint))
    ours = threadline_provider(endpoint)
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


def off_variants(endpoint: str) -> list[Variant]:
    from opentelemetry import trace

    threadline_provider(endpoint, enabled=False)
    return [
        Variant("no tracing", span_body(trace.NoOpTracerProvider().get_tracer("bench"))),
        Variant("threadline, enabled=false", span_body(trace.get_tracer("bench"))),
    ]


def flask_app() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app


def request_body(app: Any) -> Callable[[], None]:
    client = app.test_client()

    def one_request() -> None:
        response = client.get("/items/7", headers=SESSION_HEADER)
        if response.status_code != 200:
            raise RuntimeError(f"bench request failed: {response.status_code}")

    return one_request


def request_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    import threadline
    from threadline.sdk.inbound import install_flask_hooks

    bare = bare_provider(otlp_exporter(endpoint))
    otel_app = flask_app()
    FlaskInstrumentor().instrument_app(otel_app, tracer_provider=bare)  # type: ignore[no-untyped-call]
    ours = threadline_provider(endpoint)
    threadline_app = flask_app()
    threadline.instrument(threadline_app)
    # What threadline.instrument(app) does with server_instrumentation = "otel" (and did
    # before it had server spans of its own): the stock instrumentor on Threadline's
    # pipeline, then the journey hooks.
    stock_on_ours = flask_app()
    FlaskInstrumentor().instrument_app(stock_on_ours, tracer_provider=ours)  # type: ignore[no-untyped-call]
    install_flask_hooks(stock_on_ours)
    return [
        Variant("plain Flask", request_body(flask_app())),
        Variant("FlaskInstrumentor", request_body(otel_app), bare.force_flush, stock_propagator),
        Variant("threadline.instrument", request_body(threadline_app), ours.force_flush),
        Variant(FLASK_STOCK_ON_OURS, request_body(stock_on_ours), ours.force_flush),
    ]


def fastapi_app() -> Any:
    import fastapi

    app = fastapi.FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app


def asgi_body(app: Any) -> Callable[[], None]:
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


def fastapi_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    import threadline

    bare = bare_provider(otlp_exporter(endpoint))
    otel_app = fastapi_app()
    FastAPIInstrumentor.instrument_app(otel_app, tracer_provider=bare)
    ours = threadline_provider(endpoint)
    threadline_app = fastapi_app()
    threadline.instrument(threadline_app)
    # threadline.instrument() leaves out the ASGI send/receive spans: the stock
    # instrumentor told to do the same is printed too, so the span pipelines compare alike.
    same_spans = fastapi_app()
    FastAPIInstrumentor.instrument_app(
        same_spans, tracer_provider=bare, exclude_spans=["receive", "send"]
    )
    return [
        Variant("plain FastAPI", asgi_body(fastapi_app())),
        Variant("FastAPIInstrumentor", asgi_body(otel_app), bare.force_flush, stock_propagator),
        Variant(FASTAPI_SAME_SPANS, asgi_body(same_spans), bare.force_flush, stock_propagator),
        Variant("threadline.instrument", asgi_body(threadline_app), ours.force_flush),
    ]


def memory(endpoint: str) -> dict[str, dict[str, list[float]]]:
    """Bytes per span held in each pipeline's export queue (nothing exported meanwhile)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from threadline.sdk.export import pipeline as export_pipeline
    from threadline.sdk.fast import FastTracerProvider
    from threadline.sdk.sampling.head import head_sampling
    from threadline.sdk.setup import service_resource

    settings = sdk_settings(endpoint)
    never = 3_600_000  # ms: the queue is not drained while we count

    def held(make: Callable[[], tuple[Any, Callable[[], object]]]) -> float:
        provider, stop = make()
        tracer = provider.get_tracer("bench")
        with in_journey():
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
        provider = TracerProvider(resource=service_resource(settings))
        processor = BatchSpanProcessor(
            otlp_exporter(endpoint),
            max_queue_size=MEMORY_SPANS * 2,
            schedule_delay_millis=never,
            max_export_batch_size=MEMORY_SPANS * 2,
        )
        provider.add_span_processor(processor)
        return provider, lambda: None

    def fast() -> tuple[Any, Callable[[], object]]:
        sampling = head_sampling(settings)
        provider = FastTracerProvider(
            service_resource(settings),
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
