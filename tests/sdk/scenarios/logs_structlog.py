"""Scenario: structlog over the standard library, with ``configure(logs=True)``.

structlog's ``stdlib.LoggerFactory`` hands each event, rendered by the last processor,
to a ``logging`` logger: the record reaches Threadline's handler on the caller's
thread, with the span that was current. Prints the span's ids.
"""

import json

import structlog
from opentelemetry import trace

import threadline
from threadline.sdk.logs import add_trace_context

threadline.configure(service_name="structlog-shop", logs=True, export_delay_ms=50)
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_log_level,
        add_trace_context,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)
log = structlog.get_logger("structlog.shop")
with trace.get_tracer("t").start_as_current_span("refund") as span:
    log.info("not exported: below WARNING")
    log.warning("refund refused", order="o-77")
    context = span.get_span_context()
threadline.shutdown()
print(json.dumps({"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}))
