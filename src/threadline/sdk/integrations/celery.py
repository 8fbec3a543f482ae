"""Celery tasks through the stock instrumentation, plus the delivery attempt.

``opentelemetry-instrumentation-celery`` puts the context into the task message
headers when a task is sent (a PRODUCER ``apply_async`` span) and continues it in
the worker (a CONSUMER ``run`` span), baggage included. A retried task is sent again
from inside the failed run, so every attempt stays in the same trace; Threadline
records which attempt a run is as ``threadline.delivery.attempt`` (``retries + 1``).

Turn it on in both the client and the worker process before tasks run, e.g. from
``worker_process_init`` or at import of the module that defines the Celery app.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from threadline.sdk.guard import report_internal_error
from threadline.sdk.integrations.messaging import DELIVERY_ATTEMPT

_connected = False


def instrument_celery() -> bool:
    """Turn on the Celery instrumentation; False when Celery or it is not installed."""
    global _connected
    try:
        from celery import signals
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
    except ImportError:
        return False
    try:
        instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
        if not _connected:
            # Connected after the instrumentor's own handler: its run span is current here.
            signals.task_prerun.connect(_record_attempt, weak=False)
            _connected = True
    except Exception:
        report_internal_error("instrumenting Celery")
        return False
    return True


def _record_attempt(task: Any = None, **_: Any) -> None:
    try:
        span = trace.get_current_span()
        retries = getattr(getattr(task, "request", None), "retries", None) or 0
        if span.is_recording():
            span.set_attribute(DELIVERY_ATTEMPT, int(retries) + 1)
    except Exception:
        report_internal_error("recording the Celery task attempt")
