"""Scenario: configure() from env / threadline.toml / arguments; one span; prints the settings.

Usage: settings_sources.py [service name argument]
"""

import dataclasses
import json
import sys

from opentelemetry import trace

import threadline

configuration = threadline.configure(service_name=sys.argv[1] if len(sys.argv) > 1 else None)
with trace.get_tracer("scenario").start_as_current_span("configured"):
    pass
threadline.shutdown()
print(json.dumps(dataclasses.asdict(configuration.settings)))
