"""Scenario: the same requests through a Flask app given to threadline.instrument() and through
one instrumented by FlaskInstrumentor (on an SDK TracerProvider of its own); prints both spans of
every request, which instrumentation the first app got, and the error a bad setting raises."""

import json

import flask
from described_spans import described
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline

try:
    threadline.configure(service_name="flask-spans", server_instrumentation="fastest")
    bad_setting = "accepted"
except threadline.ConfigError as exc:
    bad_setting = str(exc)
threadline.configure(service_name="flask-spans")

ours_exporter, stock_exporter = InMemorySpanExporter(), InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ours_exporter))  # type: ignore[attr-defined]
stock_provider = TracerProvider()
stock_provider.add_span_processor(SimpleSpanProcessor(stock_exporter))


def shop() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("no stock left")

    @app.get("/unavailable")
    def unavailable() -> tuple[str, int]:
        return "later", 503

    return app


ours_app, stock_app = shop(), shop()
threadline.instrument(ours_app)
FlaskInstrumentor().instrument_app(stock_app, tracer_provider=stock_provider)  # type: ignore[no-untyped-call]

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    (
        "GET",
        "/items/7?q=1",
        {
            "traceparent": f"{PARENT}-01",
            "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "baggage": "shop.region=eu",
            "User-Agent": "shop-app/2.1",
        },
    ),
    ("GET", "/items/8", {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}),
    ("POST", "/items/7", {}),
    ("PURGE", "/items/7", {}),
    ("GET", "/boom", {"traceparent": f"{PARENT}-01"}),
    ("GET", "/unavailable", {}),
    ("GET", "/missing", {}),
    ("GET", "/items/9", {"traceparent": f"{PARENT}-00"}),  # an unsampled caller
]


pairs = []
for method, path, headers in REQUESTS:
    statuses = []
    for app in (ours_app, stock_app):
        response = app.test_client().open(path, method=method, headers=headers)
        statuses.append(response.status_code)
    pairs.append(
        {
            "request": f"{method} {path}",
            "statuses": statuses,
            "ours": [described(s) for s in ours_exporter.get_finished_spans()],
            "stock": [described(s) for s in stock_exporter.get_finished_spans()],
        }
    )
    ours_exporter.clear()
    stock_exporter.clear()

threadline.shutdown()
print(
    json.dumps(
        {
            "pairs": pairs,
            "ours_by_flask_instrumentor": getattr(
                ours_app, "_is_instrumented_by_opentelemetry", False
            ),
            "before_request_hooks": len(ours_app.before_request_funcs[None]),
            "bad_setting": bad_setting,
        }
    )
)
