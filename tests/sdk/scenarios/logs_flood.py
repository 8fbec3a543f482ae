"""Scenario: a flood of ERROR lines inside spans, with a small log queue.

Every span must still be exported; the log records past the log queue's size are
dropped and counted as log drops. Prints ``threadline.stats()`` (spans and logs)
after both pipelines have drained, and how many records were logged.
"""

import json
import logging

from opentelemetry import trace

import threadline
from threadline.sdk.log_export.setup import active_handler

SPANS = 200
LINES_PER_SPAN = 50

threadline.configure(
    service_name="log-flood", logs=True, logs_queue_size=50, export_delay_ms=50, stats_interval_s=0
)
tracer = trace.get_tracer("flood")
log = logging.getLogger("flood")
for n in range(SPANS):  # bounded: SPANS × LINES_PER_SPAN records
    with tracer.start_as_current_span("flooded work"):
        for k in range(LINES_PER_SPAN):
            log.error("flood %d.%d", n, k)
handler = active_handler()
assert handler is not None
drained = handler.drain(30.0)
flushed = trace.get_tracer_provider().force_flush(30_000)  # type: ignore[attr-defined]
stats = threadline.stats()
assert stats.logs is not None
threadline.shutdown()
print(
    json.dumps(
        {
            "drained": drained,
            "flushed": flushed,
            "logged": SPANS * LINES_PER_SPAN,
            "spans": SPANS,
            "span_drops": stats.dropped_total,
            "logs_exported": stats.logs.exported,
            "logs_dropped": dict(stats.logs.dropped),
        }
    )
)
