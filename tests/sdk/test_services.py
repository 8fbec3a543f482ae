"""Two real services in their own processes: Flask (A) calls FastAPI (B) with requests and httpx."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from threadline.sdk.pseudonym import Pseudonymizer

from .collector import CLIENT, SERVER, CollectedSpan, Collector, running_collector
from .conftest import running_service

USER_ID_KEY = "services-test-key"


@dataclass(frozen=True, slots=True)
class Services:
    collector: Collector
    a_url: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    logs = tmp_path_factory.mktemp("service-logs")
    with running_collector() as collector:
        env = {
            "THREADLINE_ENDPOINT": collector.endpoint,
            "THREADLINE_EXPORT_DELAY_MS": "50",
            "THREADLINE_USER_ID_KEY": USER_ID_KEY,
        }
        with (
            running_service("service_fastapi", env=env, log=logs / "b.log") as (_, b_ready),
            running_service(
                "service_flask", f"http://127.0.0.1:{b_ready['port']}", env=env, log=logs / "a.log"
            ) as (_, a_ready),
        ):
            yield Services(collector, f"http://127.0.0.1:{a_ready['port']}")


def _checkout(services: Services, headers: dict[str, str]) -> tuple[str, str, dict[str, object]]:
    """GET A's /checkout as a fresh trace; returns (trace id, caller span id, response body)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(
        f"{services.a_url}/checkout",
        headers={"traceparent": f"00-{trace_id}-{span_id}-01", **headers},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        body = json.loads(response.read())
    return trace_id, span_id, body


def _trace_spans(services: Services, trace_id: str) -> list[CollectedSpan]:
    def complete(spans: list[CollectedSpan]) -> bool:
        servers = [s for s in spans if s.trace_id == trace_id and s.kind == SERVER]
        return sum(s.service == "svc-a" for s in servers) == 1 and (
            sum(s.service == "svc-b" for s in servers) == 2
        )

    services.collector.wait_for(complete)
    return services.collector.in_trace(trace_id)


def test_one_trace_across_services_with_journey_on_every_span(services: Services) -> None:
    """A request into A yields one trace over A and B, B's server spans under A's client spans, and
    every span carries the journey."""
    trace_id, caller_span_id, body = _checkout(
        services, {"X-Session-Id": "s-header-1", "X-User-Id": "alice"}
    )
    spans = _trace_spans(services, trace_id)

    a_server = next(s for s in spans if s.service == "svc-a" and s.kind == SERVER)
    a_clients = [s for s in spans if s.service == "svc-a" and s.kind == CLIENT]
    b_servers = [s for s in spans if s.service == "svc-b" and s.kind == SERVER]
    assert {s.service for s in spans} == {"svc-a", "svc-b"}
    assert a_server.parent_span_id == caller_span_id
    assert sorted(s.scope for s in a_clients) == [
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.requests",
    ]
    assert all(c.parent_span_id == a_server.span_id for c in a_clients)
    assert sorted(s.parent_span_id for s in b_servers) == sorted(c.span_id for c in a_clients)

    pseudonym = Pseudonymizer(USER_ID_KEY)("alice")
    for span in spans:
        assert span.attributes.get("session.id") == "s-header-1", span
        assert span.attributes.get("user.id") == pseudonym, span
    assert body["downstream"] == [
        {"journey": {"session.id": "s-header-1", "user.id": pseudonym}},
        {"journey": {"session.id": "s-header-1", "user.id": pseudonym}},
    ]


def test_journey_starts_from_session_cookie(services: Services) -> None:
    """A browser request with only a session cookie starts a journey that every span of both
    services carries."""
    trace_id, _, _ = _checkout(services, {"Cookie": "theme=dark; session_id=s-cookie-1"})
    spans = _trace_spans(services, trace_id)
    assert {s.attributes.get("session.id") for s in spans} == {"s-cookie-1"}


def test_baggage_wins_over_session_header(services: Services) -> None:
    """A session already in baggage from upstream is kept even when the request also has the session
    header."""
    trace_id, _, body = _checkout(
        services, {"baggage": "session.id=s-bag-1", "X-Session-Id": "s-header-2"}
    )
    spans = _trace_spans(services, trace_id)
    assert {s.attributes.get("session.id") for s in spans} == {"s-bag-1"}
    assert body["here"] == {"session.id": "s-bag-1"}


def test_no_session_anywhere_means_no_journey(services: Services) -> None:
    """Without baggage, header or cookie, no span gets journey keys (nothing is invented)."""
    trace_id, _, _ = _checkout(services, {})
    spans = _trace_spans(services, trace_id)
    assert all("session.id" not in s.attributes and "user.id" not in s.attributes for s in spans)
