"""Scenario: configure() twice, then one span; prints whether both calls returned one
configuration."""

import json

from opentelemetry import trace

import threadline
from threadline.sdk import guard

guard.raise_internal_errors(True)
first = threadline.configure(service_name="twice", export_delay_ms=50)
second = threadline.configure(service_name="twice", export_delay_ms=50)
third = threadline.configure()
with trace.get_tracer("scenario").start_as_current_span("only-once"):
    pass
threadline.shutdown()
print(json.dumps({"same": first is second is third}))
