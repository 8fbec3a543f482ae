"""Turn on every instrumentation that is installed: what ``threadline.instrument()`` runs.

Clients and brokers whose stock instrumentation patches the library globally are
turned on here: the HTTP clients (with the baggage allow-list), gRPC, Celery,
Django (when its settings are configured) and ``threading`` (so a ``Thread`` or a
``ThreadPoolExecutor`` work item keeps the context of the code that started it).
The broker helpers of this package need no switch: they are called explicitly.
"""

from __future__ import annotations

import importlib.util

from threadline.sdk.allowlist import HostAllowList
from threadline.sdk.guard import report_internal_error
from threadline.sdk.integrations.celery import instrument_celery
from threadline.sdk.integrations.http_clients import instrument_http_clients
from threadline.sdk.integrations.http_servers import instrument_django
from threadline.sdk.integrations.rpc import instrument_grpc
from threadline.settings import SdkSettings


def instrument_installed(settings: SdkSettings) -> list[str]:
    """Instrument every installed library Threadline knows; returns what is now on."""
    enabled = instrument_http_clients(HostAllowList.parse(settings.baggage_allowed_hosts))
    if importlib.util.find_spec("grpc") is not None and instrument_grpc():
        enabled.append("grpc")
    if importlib.util.find_spec("celery") is not None and instrument_celery():
        enabled.append("celery")
    if instrument_django(settings):
        enabled.append("django")
    if _instrument_threading():
        enabled.append("threading")
    return enabled


def _instrument_threading() -> bool:
    try:
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    except ImportError:
        return False
    try:
        instrumentor = ThreadingInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    except Exception:
        report_internal_error("instrumenting threading")
        return False
    return True
