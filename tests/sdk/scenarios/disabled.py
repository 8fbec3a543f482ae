"""Scenario: enabled=False installs nothing, and instrument() then does nothing either."""

import json

import flask
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor

import threadline
from threadline.sdk.journey import current_journey

propagator_before = propagate.get_global_textmap()
configuration = threadline.configure(service_name="disabled", enabled=False)
app = flask.Flask(__name__)
threadline.instrument(app)
with (
    trace.get_tracer("scenario").start_as_current_span("not-recorded") as span,
    threadline.journey(session_id="s-off"),
):
    journey_seen = current_journey()
threadline.shutdown()
print(
    json.dumps(
        {
            "enabled": configuration.enabled,
            "provider_is_proxy": isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider),
            "propagator_unchanged": propagate.get_global_textmap() is propagator_before,
            "requests_instrumented": RequestsInstrumentor().is_instrumented_by_opentelemetry,
            "flask_instrumented": getattr(app, "_is_instrumented_by_opentelemetry", False),
            "span_recording": span.is_recording(),
            "journey_seen": journey_seen,
        }
    )
)
