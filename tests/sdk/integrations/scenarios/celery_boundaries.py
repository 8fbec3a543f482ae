"""Scenario: a Celery task on a Redis broker, retried once, with an in-process worker thread.

Usage: celery_boundaries.py <redis db number>. Prints {"trace_id", "result"} as JSON.
"""

import json
import sys

from celery import Celery
from celery.contrib.testing.worker import start_worker
from opentelemetry import trace

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="celery-boundaries")
threadline.instrument()

url = f"redis://127.0.0.1:6379/{sys.argv[1]}"
app = Celery("scenario", broker=url, backend=url)
app.conf.task_default_queue = f"threadline-scenario-{sys.argv[1]}"


@app.task(bind=True, max_retries=2, default_retry_delay=0)
def charge(self, amount: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return {"journey": current_journey(), "retries": self.request.retries, "amount": amount}


with (
    start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10),
    threadline.journey(session_id="s-celery"),
    trace.get_tracer("scenario").start_as_current_span("caller") as caller,
):
    outcome = charge.delay(7).get(timeout=30)
print(
    json.dumps({"trace_id": f"{caller.get_span_context().trace_id:032x}", "result": outcome}),
    flush=True,
)
threadline.shutdown()
