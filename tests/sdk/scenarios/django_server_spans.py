"""Scenario: the same requests through Django with the middlewares threadline.instrument() adds,
then with DjangoInstrumentor's (on an SDK TracerProvider of its own); prints both spans of every
request and the middleware list of each phase."""

import asyncio
import json
from typing import Any

import django
from described_spans import described
from django.conf import settings as django_settings
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline

threadline.configure(service_name="django-spans")
ours_exporter, stock_exporter = InMemorySpanExporter(), InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ours_exporter))  # type: ignore[attr-defined]
stock_provider = TracerProvider()
stock_provider.add_span_processor(SimpleSpanProcessor(stock_exporter))

django_settings.configure(
    ROOT_URLCONF="__main__", ALLOWED_HOSTS=["*"], SECRET_KEY="scenario", MIDDLEWARE=[]
)
django.setup()

from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.test import AsyncClient, Client  # noqa: E402
from django.urls import include, path  # noqa: E402


def item(request: Any, item_id: int) -> Any:
    return JsonResponse({"item": item_id})


def boom(request: Any) -> Any:
    raise ValueError("no stock left")


def unavailable(request: Any) -> Any:
    return HttpResponse("later", status=503)


urlpatterns = [
    path("items/<int:item_id>", item, name="item"),
    path("api/", include([path("v1/items/<int:item_id>", item)])),
    path("boom", boom),
    path("unavailable", unavailable),
]

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
    ("GET", "/api/v1/items/8", {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}),
    ("POST", "/items/7", {}),
    ("PURGE", "/items/7", {}),
    ("GET", "/boom", {"traceparent": f"{PARENT}-01"}),
    ("GET", "/unavailable", {}),
    ("GET", "/missing", {}),
    ("GET", "/items/9", {"traceparent": f"{PARENT}-00"}),  # an unsampled caller
]


def run(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    """Every request over WSGI, then over ASGI (Django's test clients build their handler
    now, so they read MIDDLEWARE now)."""
    client = Client(raise_request_exception=False)
    asgi_client = AsyncClient(raise_request_exception=False)
    results = []
    for method, path_, headers in REQUESTS:
        for served_over in ("wsgi", "asgi"):
            if served_over == "wsgi":
                response = client.generic(method, path_, headers=headers)
            else:
                response = asyncio.run(asgi_client.generic(method, path_, headers=headers))
            spans = [described(s) for s in exporter.get_finished_spans()]
            results.append({"over": served_over, "status": response.status_code, "spans": spans})
            exporter.clear()
    return results


threadline.instrument()
ours_middleware = list(django_settings.MIDDLEWARE)
ours = run(ours_exporter)
django_settings.MIDDLEWARE = []
if DjangoInstrumentor().is_instrumented_by_opentelemetry:  # server_instrumentation = "otel"
    DjangoInstrumentor().uninstrument()
DjangoInstrumentor().instrument(tracer_provider=stock_provider)
stock_middleware = list(django_settings.MIDDLEWARE)
stock = run(stock_exporter)
threadline.shutdown()
print(
    json.dumps(
        {
            "pairs": [
                {"request": f"{o['over']} {m} {p}", "ours": o, "stock": s}
                for (m, p, _), o, s in zip(
                    [r for r in REQUESTS for _ in ("wsgi", "asgi")], ours, stock, strict=True
                )
            ],
            "ours_middleware": ours_middleware,
            "stock_middleware": stock_middleware,
        }
    )
)
