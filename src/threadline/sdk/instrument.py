"""``instrument(app)``: the stock OpenTelemetry instrumentations plus Threadline's journey hooks.

One call instruments a Flask or FastAPI app (server spans, and journeys started from
the session header/cookie) and the ``requests`` and ``httpx`` clients (client spans,
and ``traceparent`` + ``baggage`` injected into every outgoing request). The app's
type is recognised without importing a framework the service does not use, and
every step is idempotent, so calling it twice changes nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

from threadline.sdk import setup
from threadline.sdk.guard import report_internal_error
from threadline.sdk.inbound import JourneyASGIMiddleware, install_flask_hooks
from threadline.settings import SdkSettings

if TYPE_CHECKING:
    import fastapi
    import flask


def instrument(app: object | None = None) -> None:
    """Instrument ``app`` (Flask or FastAPI) and the requests/httpx clients.

    Calls ``configure()`` from the environment and ``threadline.toml`` if it has not run.
    Does nothing when tracing is disabled. Raises ``TypeError`` for an app it cannot
    instrument (use ``JourneyWSGIMiddleware`` / ``JourneyASGIMiddleware`` for those).
    """
    config = setup.active() or setup.configure()
    if not config.enabled:
        return
    if app is not None:
        if _is_instance(app, "flask", "Flask"):
            _instrument_flask(app, config.settings)  # type: ignore[arg-type]
        elif _is_instance(app, "fastapi", "FastAPI"):
            _instrument_fastapi(app, config.settings)  # type: ignore[arg-type]
        else:
            raise TypeError(
                f"threadline.instrument() supports Flask and FastAPI apps, not "
                f"{type(app).__module__}.{type(app).__qualname__}; wrap other apps with "
                "threadline.sdk.inbound.JourneyWSGIMiddleware or JourneyASGIMiddleware"
            )
    _instrument_http_clients()


def _is_instance(app: object, module_name: str, class_name: str) -> bool:
    # An app of a framework must have imported that framework: no module, no match.
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(app, cls)


def _instrument_flask(app: flask.Flask, settings: SdkSettings) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    try:
        if not getattr(app, "_is_instrumented_by_opentelemetry", False):
            FlaskInstrumentor().instrument_app(app)  # type: ignore[no-untyped-call]
        install_flask_hooks(app, settings)
    except Exception:
        report_internal_error("instrumenting the Flask app")


def _instrument_fastapi(app: fastapi.FastAPI, settings: SdkSettings) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    try:
        if not getattr(app, "_is_instrumented_by_opentelemetry", False):
            # The ASGI send/receive spans add two rows per request and say nothing a
            # user acts on; the server span already covers the whole exchange.
            FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    except Exception:
        report_internal_error("instrumenting the FastAPI app")
    if not any(getattr(m, "cls", None) is JourneyASGIMiddleware for m in app.user_middleware):
        # Raises if the app has already started serving: middleware is fixed by then.
        app.add_middleware(JourneyASGIMiddleware, settings=settings)


def _instrument_http_clients() -> None:
    if importlib.util.find_spec("requests") is not None:
        try:
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            requests_instrumentor = RequestsInstrumentor()
            if not requests_instrumentor.is_instrumented_by_opentelemetry:
                requests_instrumentor.instrument()
        except Exception:
            report_internal_error("instrumenting requests")
    if importlib.util.find_spec("httpx") is not None:
        try:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            httpx_instrumentor = HTTPXClientInstrumentor()
            if not httpx_instrumentor.is_instrumented_by_opentelemetry:
                httpx_instrumentor.instrument()
        except Exception:
            report_internal_error("instrumenting httpx")
