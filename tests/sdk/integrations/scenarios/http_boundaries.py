"""Scenario: every HTTP server and client boundary in one process, exporting to the collector.

Servers (each on a free 127.0.0.1 port): Django, aiohttp, Starlette, a plain WSGI app and a
plain ASGI app. Clients: requests, httpx (sync and async), aiohttp and urllib3, each calling an
uninstrumented echo server on 127.0.0.1 (on the baggage allow-list) and on 127.0.0.2 (not on
it). Then a retried call and a timed-out call. Prints one JSON object with what each side saw.
"""

import asyncio
import json
import logging
import secrets
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import django
import httpx
import requests
import starlette.applications
import starlette.responses
import starlette.routing
import urllib3
from django.conf import settings as django_settings
from loopback_servers import serve_aiohttp, serve_asgi, serve_wsgi
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import threadline
from threadline.sdk import guard
from threadline.sdk.integrations.http_clients import resend_attempt
from threadline.sdk.integrations.http_servers import wrap_asgi, wrap_wsgi
from threadline.sdk.journey import current_journey
from threadline.testing import capture_spans

guard.raise_internal_errors(True)
threadline.configure(service_name="http-boundaries", baggage_allowed_hosts="127.0.0.1")
# Span status is not in the collector's records: read it from an in-process capture too.
capture = capture_spans()

# Django must be configured before instrument() adds its middlewares.
django_settings.configure(
    ROOT_URLCONF="__main__", ALLOWED_HOSTS=["*"], SECRET_KEY="scenario", MIDDLEWARE=[]
)
django.setup()
threadline.instrument()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

tracer = trace.get_tracer("scenario")


def seen() -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    return {"journey": current_journey(), "trace_id": f"{span_context.trace_id:032x}"}


def django_view(request: Any) -> Any:
    return JsonResponse(seen())


urlpatterns = [path("journey", django_view)]


def starlette_app() -> Any:
    async def handler(request: Any) -> Any:
        return starlette.responses.JSONResponse(seen())

    app = starlette.applications.Starlette(routes=[starlette.routing.Route("/journey", handler)])
    threadline.instrument(app)
    return app


def plain_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen()).encode()]


async def plain_asgi(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps(seen()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


flaky_calls: dict[str, int] = {}


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        status = 200
        if self.path.startswith("/flaky"):
            flaky_calls[self.path] = flaky_calls.get(self.path, 0) + 1
            status = 503 if flaky_calls[self.path] <= 2 else 200
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def serve_echo(host: str) -> int:
    server = ThreadingHTTPServer((host, 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def call_server(port: int, headers: dict[str, str]) -> dict[str, Any]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/journey",
        headers={"traceparent": f"00-{trace_id}-{span_id}-01", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    return {"trace_id": trace_id, "parent": span_id, "seen": body}


servers = {
    "django": serve_wsgi(get_wsgi_application()),
    "aiohttp": serve_aiohttp("/journey", seen),
    "starlette": serve_asgi(starlette_app()),
    "wsgi": serve_wsgi(wrap_wsgi(plain_wsgi)),
    "asgi": serve_asgi(wrap_asgi(plain_asgi)),
}
server_results = {
    name: call_server(port, {"X-Session-Id": f"s-{name}"}) for name, port in servers.items()
}
server_results["aiohttp-baggage"] = call_server(
    servers["aiohttp"], {"baggage": "session.id=s-upstream"}
)

echo = {"allowed": serve_echo("127.0.0.1"), "withheld": serve_echo("127.0.0.2")}
hosts = {"allowed": "127.0.0.1", "withheld": "127.0.0.2"}


async def aiohttp_get(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return dict(await response.json(content_type=None))


async def httpx_async_get(url: str) -> dict[str, str]:
    async with httpx.AsyncClient() as client:
        return dict((await client.get(url)).json())


pool = urllib3.PoolManager()
clients = {
    "requests": lambda url: requests.get(url, timeout=10).json(),
    "httpx": lambda url: httpx.get(url, timeout=10).json(),
    "httpx-async": lambda url: asyncio.run(httpx_async_get(url)),
    "aiohttp": lambda url: asyncio.run(aiohttp_get(url)),
    "urllib3": lambda url: json.loads(pool.request("GET", url).data),
}
client_results: dict[str, Any] = {}
with threadline.journey(session_id="s-client"), tracer.start_as_current_span("clients") as root:
    for name, get in clients.items():
        client_results[name] = {}
        for kind, port in echo.items():
            received = get(f"http://{hosts[kind]}:{port}/echo")
            client_results[name][kind] = {
                "traceparent": received.get("traceparent"),
                "baggage": received.get("baggage"),
            }
clients_trace = f"{root.get_span_context().trace_id:032x}"

with threadline.journey(session_id="s-retry"), tracer.start_as_current_span("retrying") as retry:
    statuses = []
    for attempt in range(1, 4):
        with resend_attempt(attempt):
            status = requests.get(f"http://127.0.0.1:{echo['allowed']}/flaky/1", timeout=10)
        statuses.append(status.status_code)
        if status.status_code < 500:
            break
    timed_out = False
    try:
        httpx.get(f"http://127.0.0.1:{echo['allowed']}/slow", timeout=0.3)
    except httpx.TimeoutException:
        timed_out = True

retry_clients = sorted(
    (
        span
        for span in capture.spans
        if span.kind == SpanKind.CLIENT
        and span.context is not None
        and span.context.trace_id == retry.get_span_context().trace_id
    ),
    key=lambda span: span.start_time or 0,
)
# configure() made every log record carry the trace and the journey.
with threadline.journey(session_id="s-log"), tracer.start_as_current_span("logging") as logged:
    record = logging.getLogger("scenario").makeRecord("scenario", logging.INFO, "", 0, "", (), None)
log_fields = {key: record.__dict__.get(key) for key in ("trace_id", "span_id", "session.id")}
log_expected = {
    "trace_id": f"{logged.get_span_context().trace_id:032x}",
    "span_id": f"{logged.get_span_context().span_id:016x}",
    "session.id": "s-log",
}
print(
    json.dumps(
        {
            "servers": server_results,
            "clients": client_results,
            "clients_trace": clients_trace,
            "retry_trace": f"{retry.get_span_context().trace_id:032x}",
            "statuses": statuses,
            "timed_out": timed_out,
            "log_fields": log_fields,
            "log_expected": log_expected,
            "retry_clients": [
                {
                    "resend_count": (span.attributes or {}).get("http.request.resend_count"),
                    "error": span.status.status_code == StatusCode.ERROR,
                }
                for span in retry_clients
            ],
        }
    ),
    flush=True,
)
threadline.shutdown()
