"""Scenario: journey sampling and W3C header shapes at six real servers, where journeys start.

Usage: journey_sampling.py <sessions per server>. Run with a sampling rules file whose
default is ``{probability = 0.5, by = "journey"}``. Servers on free 127.0.0.1 ports:
a plain WSGI app, a plain ASGI app, Flask, FastAPI, Django and aiohttp, each answering
the trace it ran in and the context it would send on. Every session makes 4 requests
carrying no baggage and no ``traceparent``, as a browser does: half the sessions send
``X-Session-Id``, the other half the ``session_id`` cookie. Then each server gets the
header shapes of the W3C conformance suite. Prints one JSON object with what each
server answered; the test counts what the collector received.
"""

import http.client
import json
import sys
from typing import Any

import django
import fastapi
import flask
from django.conf import settings as django_settings
from loopback_servers import serve_aiohttp, serve_asgi, serve_wsgi
from opentelemetry import propagate, trace

import threadline
from threadline.sdk import guard
from threadline.sdk.integrations.http_servers import wrap_asgi, wrap_wsgi
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
SESSIONS = int(sys.argv[1])
REQUESTS_PER_SESSION = 4
TRACEPARENT = "00-12345678901234567890123456789012-1234567890123456-01"

threadline.configure(service_name="journey-edge")
django_settings.configure(
    ROOT_URLCONF="__main__", ALLOWED_HOSTS=["*"], SECRET_KEY="scenario", MIDDLEWARE=[]
)
django.setup()
threadline.instrument()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def seen() -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    outgoing: dict[str, str] = {}
    propagate.inject(outgoing)
    return {
        "trace_id": f"{span_context.trace_id:032x}",
        "sampled": span_context.trace_flags.sampled,
        "journey": current_journey(),
        "outgoing": outgoing,
    }


def django_view(request: Any) -> Any:
    return JsonResponse(seen())


urlpatterns = [path("edge", django_view)]


def plain_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen()).encode()]


async def plain_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps(seen()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


flask_app = flask.Flask(__name__)
threadline.instrument(flask_app)


@flask_app.get("/edge")
def flask_edge() -> Any:
    return flask.jsonify(seen())


fastapi_app = fastapi.FastAPI()
threadline.instrument(fastapi_app)


@fastapi_app.get("/edge")
async def fastapi_edge() -> dict[str, Any]:
    return seen()


def get(port: int, headers: list[tuple[str, str]]) -> dict[str, Any]:
    """GET /edge with ``headers`` as given: repeated names stay separate field lines."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", "/edge")
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        return {"status": response.status, **(json.loads(body) if response.status == 200 else {})}
    finally:
        connection.close()


def bars(count: int) -> list[tuple[str, str]]:
    members = [f"bar{index:02d}={index:02d}" for index in range(1, count + 1)]
    return [("tracestate", ",".join(members[i : i + 10])) for i in range(0, count, 10)]


# (name, headers): the shapes the W3C conformance suite sends, and garbage.
PROBES = [
    ("repeated", [("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2")]),
    ("ows", [("tracestate", "foo=1 \t , \t bar=2, \t baz=3")]),
    ("empty-header", [("tracestate", ""), ("tracestate", "foo=1")]),
    ("32-members", bars(32)),
    ("33-members", bars(33)),
    ("key-256", [("tracestate", "foo=1"), ("tracestate", "z" * 256 + "=1")]),
    ("key-257", [("tracestate", "foo=1"), ("tracestate", "z" * 257 + "=1")]),
    ("at-first", [("tracestate", "@foo=1,bar=2")]),
    ("at-last", [("tracestate", "foo@=1,bar=2")]),
    ("bad-value", [("tracestate", "foo=bar=baz")]),
    ("empty-value", [("tracestate", "foo=,bar=3")]),
]
GARBAGE = [
    ("traceparent", "00-not-a-traceparent-01"),
    ("tracestate", "@@@,==,,~"),
    ("baggage", "%E2%82=;;;,=,session.id"),
]

servers = {
    "wsgi": serve_wsgi(wrap_wsgi(plain_wsgi)),
    "asgi": serve_asgi(wrap_asgi(plain_asgi)),
    "flask": serve_wsgi(flask_app),
    "fastapi": serve_asgi(fastapi_app),
    "django": serve_wsgi(get_wsgi_application()),
    "aiohttp": serve_aiohttp("/edge", seen),
}

journeys: dict[str, list[dict[str, Any]]] = {}
probes: dict[str, dict[str, Any]] = {}
for name, port in servers.items():
    journeys[name] = []
    for number in range(SESSIONS):
        session = f"{name}-session-{number}"
        by_cookie = number % 2 == 1
        header = ("Cookie", f"theme=dark; session_id={session}") if by_cookie else None
        headers = [header or ("X-Session-Id", session)]
        for _ in range(REQUESTS_PER_SESSION):
            answer = get(port, headers)
            journeys[name].append({"session": session, "by_cookie": by_cookie, **answer})
    probes[name] = {
        probe: get(port, [("traceparent", TRACEPARENT), *headers]) for probe, headers in PROBES
    }
    probes[name]["garbage"] = get(port, [*GARBAGE, ("X-Session-Id", f"{name}-garbage")])

print(json.dumps({"journeys": journeys, "probes": probes}), flush=True)
threadline.shutdown()
