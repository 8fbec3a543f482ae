"""Threadline's own Flask server spans: the spans FlaskInstrumentor makes, request for request.

Each run sends the same requests (a routed GET continuing a sampled caller with tracestate
and baggage, a bot's GET, methods the route refuses or does not know, an exception, a 503,
a 404, an unsampled caller) through an app given to ``threadline.instrument()`` and through
one instrumented by ``FlaskInstrumentor`` on its own SDK provider, under each HTTP
semantic-convention opt-in, and compares the spans field by field.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ScenarioRunner

OPT_INS = ["", "http", "http/dup"]


def _run(run_scenario: ScenarioRunner, **env: str) -> Any:
    return run_scenario("flask_server_spans", env=env).output


@pytest.mark.parametrize("opt_in", OPT_INS)
def test_same_spans_as_flask_instrumentor(run_scenario: ScenarioRunner, opt_in: str) -> None:
    """Name, kind, scope, attributes, status, recorded exception, parent and tracestate match the
    stock instrumentation's for every request; an unsampled caller yields no span in either."""
    output = _run(run_scenario, OTEL_SEMCONV_STABILITY_OPT_IN=opt_in)
    assert output["ours_by_flask_instrumentor"] is False
    for pair in output["pairs"]:
        assert pair["ours"] == pair["stock"], pair["request"]
        assert pair["statuses"][0] == pair["statuses"][1], pair["request"]
    by_request = {pair["request"]: pair["ours"] for pair in output["pairs"]}
    assert by_request["GET /items/9"] == []

    (routed,) = by_request["GET /items/7?q=1"]
    assert routed["name"] == "GET /items/<int:item_id>"
    assert routed["kind"] == "SERVER"
    assert routed["attributes"]["http.route"] == "/items/<int:item_id>"
    assert routed["parent"] == "00f067aa0ba902b7"
    assert routed["remote_parent"] is True
    assert routed["trace_state"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    method_key = "http.method" if opt_in == "" else "http.request.method"
    status_key = "http.status_code" if opt_in == "" else "http.response.status_code"
    agent_key = "http.user_agent" if opt_in == "" else "user_agent.original"
    assert routed["attributes"][method_key] == "GET"
    assert routed["attributes"][status_key] == 200
    assert routed["attributes"][agent_key] == "shop-app/2.1"
    assert routed["ended_after_start"] is True

    (boom,) = by_request["GET /boom"]
    assert boom["status"] == ["ERROR", "ValueError: no stock left"]
    assert [e["exception.type"] for e in boom["events"]] == ["ValueError"]
    assert boom["stacktrace_ends_with"] == [["ValueError: no stock left"]]
    (unavailable,) = by_request["GET /unavailable"]
    assert unavailable["status"][0] == "ERROR"
    (missing,) = by_request["GET /missing"]
    assert missing["name"] == "GET /missing"
    assert "http.route" not in missing["attributes"]
    assert missing["status"][0] == "UNSET"
    (unknown,) = by_request["PURGE /items/7"]
    assert unknown["name"] == "HTTP"


def test_otel_setting_keeps_flask_instrumentor(run_scenario: ScenarioRunner) -> None:
    """server_instrumentation = "otel" instruments the app with FlaskInstrumentor itself."""
    output = _run(run_scenario, THREADLINE_SERVER_INSTRUMENTATION="otel")
    assert output["ours_by_flask_instrumentor"] is True
    assert all(pair["ours"] == pair["stock"] for pair in output["pairs"])


def test_unknown_server_instrumentation_is_a_config_error(run_scenario: ScenarioRunner) -> None:
    """A value other than threadline or otel is refused, naming the setting and the choices."""
    output = _run(run_scenario)
    assert "server_instrumentation" in output["bad_setting"]
    assert "'threadline', 'otel'" in output["bad_setting"]


@pytest.mark.parametrize(
    "variable", ["OTEL_PYTHON_FLASK_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"]
)
def test_excluded_urls_get_no_span_as_with_flask_instrumentor(
    run_scenario: ScenarioRunner, variable: str
) -> None:
    """Health checks kept out of tracing stay out: an excluded URL gets no span from either
    path, every other request still gets its span."""
    output = _run(run_scenario, **{variable: "unavailable"})
    by_request = {pair["request"]: pair for pair in output["pairs"]}
    excluded = by_request["GET /unavailable"]
    assert excluded["statuses"] == [503, 503]
    assert excluded["ours"] == excluded["stock"] == []
    assert by_request["GET /boom"]["ours"]
    assert all(pair["ours"] == pair["stock"] for pair in output["pairs"])
