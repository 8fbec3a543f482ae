"""Journeys started from an inbound session header or cookie, behind the OpenTelemetry server hooks.

Real servers on loopback (werkzeug for WSGI and Flask, uvicorn for ASGI) with a local
TracerProvider, so the server spans are real without installing a global provider.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGIMiddleware
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGIMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug.serving import make_server

from support.live_server import loopback_listener, serving_asgi
from support.threaded_http import serving_in_thread
from threadline.sdk.inbound import (
    JourneyASGIMiddleware,
    JourneyWSGIMiddleware,
    Receive,
    Scope,
    Send,
    install_flask_hooks,
)
from threadline.sdk.integrations.flask_server import instrument_flask
from threadline.sdk.journey import current_journey
from threadline.sdk.processors import JourneyStampingProcessor
from threadline.sdk.propagation.session import (
    MAX_SESSION_ID_CHARS,
    clean_session_id,
    cookie_value,
)
from threadline.settings import SdkSettings

SETTINGS = SdkSettings(session_header="X-Session-Id", session_cookie="sid")
WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    exporter: InMemorySpanExporter

    def get(self, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(f"{self.url}/journey", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def server_span(self, count: int) -> ReadableSpan:
        """The server span of request number ``count`` (1-based), once it has ended."""
        deadline = time.monotonic() + WAIT_S
        while True:
            servers = [s for s in self.exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
            if len(servers) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len(servers) >= count, "server span not exported"
        return servers[count - 1]


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(JourneyStampingProcessor(lambda user_id: user_id))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _serve_wsgi(app: Any, exporter: InMemorySpanExporter) -> Iterator[Server]:
    # Single-threaded on purpose: consecutive requests share one thread, so a context
    # left attached by one request would show up in the next.
    with serving_in_thread(make_server("127.0.0.1", 0, app, threaded=False)) as server:
        yield Server(f"http://127.0.0.1:{server.server_port}", exporter)


def _journey_body() -> Iterator[bytes]:
    """A streamed body: the journey is checked while the server iterates it, too."""
    seen = current_journey()
    yield b'{"handler": '
    yield json.dumps(seen).encode()
    yield b', "streaming": ' + json.dumps(current_journey()).encode() + b"}"


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return _journey_body()


@pytest.fixture
def wsgi_server() -> Iterator[Server]:
    provider, exporter = _provider()
    app = OtelWSGIMiddleware(JourneyWSGIMiddleware(_wsgi_app, SETTINGS), tracer_provider=provider)
    yield from _serve_wsgi(app, exporter)


@pytest.fixture
def flask_server() -> Iterator[Server]:
    provider, exporter = _provider()
    app = flask.Flask(__name__)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
    install_flask_hooks(app, SETTINGS)
    install_flask_hooks(app, SETTINGS)  # a second call must not register twice

    @app.get("/journey")
    def journey() -> Any:
        return {"handler": current_journey(), "streaming": current_journey()}

    yield from _serve_wsgi(app, exporter)


@pytest.fixture
def threadline_flask_server() -> Iterator[Server]:
    """Threadline's own server spans (what ``threadline.instrument(app)`` installs), then the
    journey hooks."""
    provider, exporter = _provider()
    app = flask.Flask(__name__)
    instrument_flask(app, tracer_provider=provider)
    instrument_flask(app, tracer_provider=provider)  # a second call must not register twice
    install_flask_hooks(app, SETTINGS)

    @app.get("/journey")
    def journey() -> Any:
        return {"handler": current_journey(), "streaming": current_journey()}

    assert len(app.before_request_funcs[None]) == 2
    yield from _serve_wsgi(app, exporter)


async def _asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps({"handler": current_journey(), "streaming": current_journey()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def asgi_server() -> Iterator[Server]:
    provider, exporter = _provider()
    app = OtelASGIMiddleware(JourneyASGIMiddleware(_asgi_app, SETTINGS), tracer_provider=provider)
    with serving_asgi(app, loopback_listener()) as url:
        yield Server(url, exporter)


SERVERS = ["wsgi_server", "flask_server", "threadline_flask_server", "asgi_server"]


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_session_header_starts_journey(server_fixture: str, request: pytest.FixtureRequest) -> None:
    """A request with the session header runs with that session in baggage, and its server span
    carries it."""
    server: Server = request.getfixturevalue(server_fixture)
    seen = server.get({"X-Session-Id": "s-header"})
    assert seen == {"handler": {"session.id": "s-header"}, "streaming": {"session.id": "s-header"}}
    assert (server.server_span(1).attributes or {}).get("session.id") == "s-header"


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_session_cookie_starts_journey(server_fixture: str, request: pytest.FixtureRequest) -> None:
    """Without the header, the session cookie starts the journey."""
    server: Server = request.getfixturevalue(server_fixture)
    seen = server.get({"Cookie": 'other=1; sid="s-cookie"; broken'})
    assert seen["handler"] == {"session.id": "s-cookie"}
    assert (server.server_span(1).attributes or {}).get("session.id") == "s-cookie"


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_baggage_wins(server_fixture: str, request: pytest.FixtureRequest) -> None:
    """Session baggage from an upstream service is kept over this request's header and cookie."""
    server: Server = request.getfixturevalue(server_fixture)
    seen = server.get(
        {"baggage": "session.id=s-upstream", "X-Session-Id": "s-header", "Cookie": "sid=s-cookie"}
    )
    assert seen["handler"] == {"session.id": "s-upstream"}
    assert (server.server_span(1).attributes or {}).get("session.id") == "s-upstream"


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_journey_does_not_leak_into_next_request(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    """After a request with a session, the next request on the same server thread starts clean."""
    server: Server = request.getfixturevalue(server_fixture)
    server.get({"X-Session-Id": "s-first"})
    seen = server.get({})
    assert seen == {"handler": {}, "streaming": {}}
    assert "session.id" not in (server.server_span(2).attributes or {})


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_unusable_session_values_are_ignored(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    """An over-long session header does not become baggage; the cookie is used instead."""
    server: Server = request.getfixturevalue(server_fixture)
    seen = server.get({"X-Session-Id": "x" * (MAX_SESSION_ID_CHARS + 1), "Cookie": "sid=s-ok"})
    assert seen["handler"] == {"session.id": "s-ok"}


def test_cookie_value_parsing() -> None:
    """Cookies are found among others, unquoted, and malformed neighbours do not hide them."""
    assert cookie_value("a=1; sid=abc; b=2", "sid") == "abc"
    assert cookie_value('sid="quoted value"', "sid") == "quoted value"
    assert cookie_value("junk; ;=; sid=x", "sid") == "x"
    assert cookie_value("sidx=1; xsid=2", "sid") is None
    assert cookie_value(None, "sid") is None


def test_clean_session_id() -> None:
    """Session ids are trimmed; empty, non-printable or over-long values are refused."""
    assert clean_session_id("  s-1 ") == "s-1"
    assert clean_session_id("") is None
    assert clean_session_id("bad\nvalue") is None
    assert clean_session_id("x" * (MAX_SESSION_ID_CHARS + 1)) is None
    assert clean_session_id(None) is None
