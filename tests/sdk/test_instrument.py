"""instrument(): stock instrumentations plus journey hooks, once, whatever the number of calls."""

from __future__ import annotations

from .collector import CLIENT, SERVER, Collector
from .conftest import ScenarioRunner


def test_instrument_is_idempotent_and_traces_clients_and_server(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """Repeated instrument() calls register each hook once and produce one span per call and
    side."""
    result = run_scenario("instrument_twice", env={"THREADLINE_SERVICE_NAME": "instrumented"})
    assert result.output["before_request_hooks"] == 2  # OpenTelemetry's and Threadline's
    assert result.output["teardown_hooks"] == 2
    assert result.output["fastapi_imported"] is False
    assert "supports Flask and FastAPI" in result.output["unsupported"]

    spans = collector.spans
    clients = [s for s in spans if s.kind == CLIENT]
    servers = [s for s in spans if s.kind == SERVER]
    assert sorted(s.scope for s in clients) == [
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.requests",
    ]
    assert len(servers) == 2
    assert {s.parent_span_id for s in servers} == {c.span_id for c in clients}
    assert {s.attributes.get("session.id") for s in servers} == {"s-requests", "s-httpx"}
    assert {s.service for s in spans} == {"instrumented"}
