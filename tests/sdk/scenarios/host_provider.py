"""Scenario: the host set up its own TracerProvider before configure(); Threadline joins it."""

import json

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline
from threadline.sdk import guard

guard.raise_internal_errors(True)
host_exporter = InMemorySpanExporter()
host_provider = TracerProvider(resource=Resource.create({"service.name": "host-named"}))
host_provider.add_span_processor(SimpleSpanProcessor(host_exporter))
trace.set_tracer_provider(host_provider)

configuration = threadline.configure(service_name="ignored", export_delay_ms=50)
with (
    threadline.journey(session_id="s-host"),
    trace.get_tracer("scenario").start_as_current_span("host-span"),
):
    pass
threadline.shutdown()
print(
    json.dumps(
        {
            "same_provider": configuration.tracer_provider is host_provider,
            "host_saw": [dict(s.attributes or {}) for s in host_exporter.get_finished_spans()],
        }
    )
)
