"""HTTP servers and clients in a real process: server spans continue the caller's trace, clients
inject, baggage goes only to allowed hosts, retries and timeouts are visible."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sdk.collector import CLIENT, SERVER, CollectedSpan, Collector

SERVER_SCOPES = {
    "django": "opentelemetry.instrumentation.django",
    "aiohttp": "opentelemetry.instrumentation.aiohttp_server",
    "starlette": "opentelemetry.instrumentation.starlette",
    "wsgi": "opentelemetry.instrumentation.wsgi",
    "asgi": "opentelemetry.instrumentation.asgi",
}
CLIENTS = ("requests", "httpx", "httpx-async", "aiohttp", "urllib3")


@pytest.fixture
def result(
    run_boundary_scenario: Callable[..., Any], collector: Collector
) -> tuple[dict[str, Any], Collector]:
    output = run_boundary_scenario("http_boundaries")
    return output, collector


def _server_span(spans: list[CollectedSpan], trace_id: str) -> CollectedSpan:
    servers = [s for s in spans if s.trace_id == trace_id and s.kind == SERVER]
    assert len(servers) == 1, servers
    return servers[0]


def test_http_boundaries(result: tuple[dict[str, Any], Collector]) -> None:
    """Every server continues the caller's trace with the journey; every client injects trace
    context, sends baggage to the allowed host only, and retries/timeouts show as spans."""
    output, collector = result
    spans = collector.wait_for(
        lambda got: any(s.name == "retrying" for s in got) and len(got) >= 20
    )

    # Servers: a SERVER span from the stock instrumentation, child of the caller's span, with
    # the journey started from the session header (or kept from upstream baggage).
    for name, scope in SERVER_SCOPES.items():
        called = output["servers"][name]
        assert called["seen"] == {
            "journey": {"session.id": f"s-{name}"},
            "trace_id": called["trace_id"],
        }, name
        span = _server_span(spans, called["trace_id"])
        assert span.scope == scope, name
        assert span.parent_span_id == called["parent"], name
        assert span.attributes.get("session.id") == f"s-{name}", name
    upstream = output["servers"]["aiohttp-baggage"]
    assert upstream["seen"]["journey"] == {"session.id": "s-upstream"}

    # Clients: traceparent of the clients' trace to both hosts; baggage to 127.0.0.1 only.
    trace_id = output["clients_trace"]
    for name in CLIENTS:
        seen = output["clients"][name]
        assert seen["allowed"]["baggage"] == "session.id=s-client", name
        assert seen["withheld"]["baggage"] is None, name
        for kind in ("allowed", "withheld"):
            assert seen[kind]["traceparent"].split("-")[1] == trace_id, (name, kind)
    client_spans = [s for s in collector.in_trace(trace_id) if s.kind == CLIENT]
    assert len(client_spans) == 2 * len(CLIENTS)
    assert all(s.attributes.get("session.id") == "s-client" for s in client_spans)

    # Retries: each attempt its own client span in the same trace, numbered; 5xx and the
    # timeout mark the spans that saw them as errors.
    assert output["statuses"] == [503, 503, 200]
    assert output["timed_out"] is True
    # configure() installed the log-record factory: records carry trace, span and journey.
    assert output["log_fields"] == output["log_expected"]
    assert output["retry_clients"] == [
        {"resend_count": None, "error": True},
        {"resend_count": 1, "error": True},
        {"resend_count": 2, "error": False},
        {"resend_count": None, "error": True},  # the timed-out call
    ]
    retry_spans = [s for s in collector.in_trace(output["retry_trace"]) if s.kind == CLIENT]
    assert len(retry_spans) == 4
