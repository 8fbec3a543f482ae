"""The Django, requests and httpx variants ``bench/sdk_overhead.py`` times.

These instrumentations patch their library globally (and Django's is read when a handler
is built), so one process cannot hold a stock-instrumented and a Threadline-instrumented
copy side by side. Each variant turns its instrumentation on when its timed loop starts
and off when it ends (``Variant.around``, outside the timed part), so the variants can
still run interleaved, round by round, in one process.

The stock variants also put the stock propagator (W3C trace context + baggage) in place
while they run: a service instrumented with OpenTelemetry alone extracts and injects
with it, not with the propagator ``threadline.configure()`` installs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from sdk_overhead_variants import (
    SESSION_HEADER,
    Variant,
    bare_provider,
    otlp_exporter,
    stock_propagator,
    threadline_provider,
)

PLAIN: Final = "plain"
STOCK_INSTRUMENTOR: Final = "OpenTelemetry instrumentor"
THREADLINE: Final = "threadline.instrument"
STOCK_ON_THREADLINE: Final = 'threadline.instrument, server_instrumentation="otel"'


def stock_around(
    instrumentor: Any, provider: Any, **kwargs: Any
) -> Callable[[], AbstractContextManager[object]]:
    @contextmanager
    def around() -> Iterator[None]:
        with stock_propagator():
            instrumentor.instrument(tracer_provider=provider, **kwargs)
            try:
                yield
            finally:
                instrumentor.uninstrument()

    return around


# --- HTTP clients: a keep-alive loopback server in this process ------------------------


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the loop measures requests, not connects

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


def _loopback_server() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/items/7"


def _threadline_clients_around() -> Callable[[], AbstractContextManager[object]]:
    """What ``threadline.instrument()`` turns on for HTTP clients, for one loop."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    from threadline.sdk import setup
    from threadline.sdk.allowlist import HostAllowList
    from threadline.sdk.integrations.http_clients import instrument_http_clients

    allow_list = HostAllowList.parse(setup.active_settings().baggage_allowed_hosts)
    instrumentors = (RequestsInstrumentor(), HTTPXClientInstrumentor(), URLLib3Instrumentor())

    @contextmanager
    def around() -> Iterator[None]:
        instrument_http_clients(allow_list)
        try:
            yield
        finally:
            for instrumentor in instrumentors:
                if instrumentor.is_instrumented_by_opentelemetry:
                    instrumentor.uninstrument()

    return around


def _client_body(get: Callable[..., Any], url: str) -> Callable[[], None]:
    def one_request() -> None:
        response = get(url, headers=SESSION_HEADER)
        if response.status_code != 200:
            raise RuntimeError(f"bench request failed: {response.status_code}")

    return one_request


def requests_variants(endpoint: str) -> list[Variant]:
    import requests
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    bare = bare_provider(otlp_exporter(endpoint))
    ours = threadline_provider(endpoint)
    url = _loopback_server()
    body = _client_body(requests.Session().get, url)
    return [
        Variant(PLAIN, body, around=in_journey(_nothing)),
        Variant(
            STOCK_INSTRUMENTOR,
            body,
            bare.force_flush,
            in_journey(stock_around(RequestsInstrumentor(), bare)),
        ),
        Variant(THREADLINE, body, ours.force_flush, in_journey(_threadline_clients_around())),
    ]


class _HttpxClient:
    """An ``httpx.Client`` opened per loop: the instrumentor wraps the transport of
    clients made while it is on, so each loop opens its own (and connects) untimed."""

    def __init__(self, url: str, around: Callable[[], AbstractContextManager[object]]) -> None:
        self._url = url
        self._around = around
        self._get: Callable[..., Any] = lambda *_, **__: None

    def body(self) -> None:
        response = self._get(self._url, headers=SESSION_HEADER)
        if response.status_code != 200:
            raise RuntimeError(f"bench request failed: {response.status_code}")

    @contextmanager
    def opened(self) -> Iterator[None]:
        import httpx

        with self._around(), httpx.Client() as client:
            client.get(self._url)
            self._get = client.get
            yield


def httpx_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    bare = bare_provider(otlp_exporter(endpoint))
    ours = threadline_provider(endpoint)
    url = _loopback_server()
    plain = _HttpxClient(url, in_journey(_nothing))
    stock = _HttpxClient(url, in_journey(stock_around(HTTPXClientInstrumentor(), bare)))
    threadline = _HttpxClient(url, in_journey(_threadline_clients_around()))
    return [
        Variant(PLAIN, plain.body, around=plain.opened),
        Variant(STOCK_INSTRUMENTOR, stock.body, bare.force_flush, stock.opened),
        Variant(THREADLINE, threadline.body, ours.force_flush, threadline.opened),
    ]


# --- Django: a one-view project, its WSGI handler called with a prepared environ --------


def _django_setup() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


def _item(request: Any, item_id: int) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"item": item_id})


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("items/<int:item_id>", _item)]


def __getattr__(name: str) -> Any:
    # Django reads ROOT_URLCONF's ``urlpatterns`` lazily, after setup.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


class _DjangoHandler:
    """A ``WSGIHandler`` built per loop, after the loop's instrumentation changed
    ``settings.MIDDLEWARE`` (Django reads it when the handler is built)."""

    def __init__(self, around: Callable[[], AbstractContextManager[object]]) -> None:
        self._around = around
        self._handler: Any = None
        self._environ: dict[str, Any] = {}

    def body(self) -> None:
        statuses: list[str] = []
        body = self._handler(dict(self._environ), lambda status, headers: statuses.append(status))
        b"".join(body)
        body.close()
        if statuses != ["200 OK"]:
            raise RuntimeError(f"bench request failed: {statuses}")

    @contextmanager
    def opened(self) -> Iterator[None]:
        import io

        from django.core.handlers.wsgi import WSGIHandler

        with self._around():
            self._handler = WSGIHandler()
            self._environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/items/7",
                "SCRIPT_NAME": "",
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_HOST": "127.0.0.1:8000",
                "HTTP_X_SESSION_ID": "s-8f3a2c",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(b""),
                "wsgi.errors": io.StringIO(),
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
            self.body()  # the first request builds Django's URL resolver caches
            yield


def _threadline_django_around(
    server_instrumentation: str = "threadline",
) -> Callable[[], AbstractContextManager[object]]:
    """What ``threadline.instrument()`` turns on for Django, for one loop (with
    ``server_instrumentation = "otel"``: the stock middleware on Threadline's pipeline,
    then the journey middleware, as before Threadline had its own)."""
    import dataclasses

    from django.conf import settings
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    from threadline.sdk import setup
    from threadline.sdk.integrations.http_servers import instrument_django

    chosen = dataclasses.replace(
        setup.active_settings(), server_instrumentation=server_instrumentation
    )

    @contextmanager
    def around() -> Iterator[None]:
        instrument_django(chosen)
        try:
            yield
        finally:
            if DjangoInstrumentor().is_instrumented_by_opentelemetry:
                DjangoInstrumentor().uninstrument()
            settings.MIDDLEWARE = []

    return around


def django_variants(endpoint: str) -> list[Variant]:
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    _django_setup()
    bare = bare_provider(otlp_exporter(endpoint))
    ours = threadline_provider(endpoint)
    plain = _DjangoHandler(_nothing)
    stock = _DjangoHandler(stock_around(DjangoInstrumentor(), bare))
    threadline = _DjangoHandler(_threadline_django_around())
    stock_on_ours = _DjangoHandler(_threadline_django_around("otel"))
    return [
        Variant(PLAIN, plain.body, around=plain.opened),
        Variant(STOCK_INSTRUMENTOR, stock.body, bare.force_flush, stock.opened),
        Variant(THREADLINE, threadline.body, ours.force_flush, threadline.opened),
        Variant(STOCK_ON_THREADLINE, stock_on_ours.body, ours.force_flush, stock_on_ours.opened),
    ]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def in_journey(
    around: Callable[[], AbstractContextManager[object]],
) -> Callable[[], AbstractContextManager[object]]:
    """Client calls made inside a journey, as a traced service's request handler makes them
    (every variant alike, so the stock instrumentation injects the same baggage)."""
    import threadline

    @contextmanager
    def both() -> Iterator[None]:
        with around(), threadline.journey(session_id="s-8f3a2c", user_id="customer-42"):
            yield

    return both
