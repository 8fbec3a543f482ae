"""Threadline's own Django server spans: the spans DjangoInstrumentor makes, request for request.

Each run sends the same requests (a routed GET continuing a sampled caller with tracestate
and baggage, a bot's GET to an included URLconf, a POST, an unknown method, an exception,
a 503, a 404, an unsampled caller) through Django with the middlewares
``threadline.instrument()`` adds and then with ``DjangoInstrumentor``'s on its own SDK
provider, each over WSGI and over ASGI, under each HTTP semantic-convention opt-in, and
compares the spans field by field.
"""

from __future__ import annotations

import pytest

from .conftest import ScenarioRunner

OPT_INS = ["", "http", "http/dup"]
SERVER_SPAN_MIDDLEWARE = "threadline.sdk.integrations.django_server.ServerSpanMiddleware"
JOURNEY_MIDDLEWARE = "threadline.sdk.integrations.http_servers.JourneyDjangoMiddleware"


@pytest.mark.parametrize("opt_in", OPT_INS)
def test_same_spans_as_django_instrumentor(run_scenario: ScenarioRunner, opt_in: str) -> None:
    """Name, kind, scope, attributes, status, recorded exception, parent and tracestate match the
    stock middleware's for every request over WSGI and ASGI; an unsampled caller yields none."""
    output = run_scenario(
        "django_server_spans", env={"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}
    ).output
    assert output["ours_middleware"] == [SERVER_SPAN_MIDDLEWARE, JOURNEY_MIDDLEWARE]
    assert all("opentelemetry" in path for path in output["stock_middleware"])
    for pair in output["pairs"]:
        assert pair["ours"] == pair["stock"], pair["request"]
    by_request = {pair["request"]: pair["ours"] for pair in output["pairs"]}
    for over in ("wsgi", "asgi"):
        assert by_request[f"{over} GET /items/9"]["spans"] == []
        (routed,) = by_request[f"{over} GET /items/7?q=1"]["spans"]
        assert routed["name"] == "GET items/<int:item_id>"
        assert routed["kind"] == "SERVER"
        assert routed["attributes"]["http.route"] == "items/<int:item_id>"
        assert routed["parent"] == "00f067aa0ba902b7"
        assert routed["trace_state"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        (included,) = by_request[f"{over} GET /api/v1/items/8"]["spans"]
        assert included["name"] == "GET api/v1/items/<int:item_id>"
        (boom,) = by_request[f"{over} GET /boom"]["spans"]
        assert by_request[f"{over} GET /boom"]["status"] == 500
        assert boom["status"] == ["ERROR", "ValueError: no stock left"]
        assert [e["exception.type"] for e in boom["events"]] == ["ValueError"]
        (unavailable,) = by_request[f"{over} GET /unavailable"]["spans"]
        assert unavailable["status"][0] == "ERROR"
        (missing,) = by_request[f"{over} GET /missing"]["spans"]
        assert missing["name"] == "GET"
        assert missing["status"][0] == "UNSET"
        (unknown,) = by_request[f"{over} PURGE /items/7"]["spans"]
        assert unknown["name"] == "HTTP"


def test_otel_setting_keeps_django_instrumentor(run_scenario: ScenarioRunner) -> None:
    """server_instrumentation = "otel" puts DjangoInstrumentor's middleware in place of ours,
    with the journey middleware right after it."""
    output = run_scenario(
        "django_server_spans", env={"THREADLINE_SERVER_INSTRUMENTATION": "otel"}
    ).output
    stock_middleware, journey = output["ours_middleware"]
    assert "opentelemetry" in stock_middleware
    assert journey == JOURNEY_MIDDLEWARE
    assert all(pair["ours"] == pair["stock"] for pair in output["pairs"])


def test_settings_only_the_stock_middleware_reads_are_named(run_scenario: ScenarioRunner) -> None:
    """Django's traced request attributes, read only by the stock middleware, are named in a
    warning rather than silently ignored."""
    env = {"OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS": "path"}
    stderr = run_scenario("django_server_spans", env=env).stderr
    assert "does not read OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS" in stderr
