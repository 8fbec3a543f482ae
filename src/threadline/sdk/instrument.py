"""``instrument(app)``: server and client spans plus Threadline's journey hooks.

Flask apps and Django get Threadline's own server spans (:mod:`.integrations.flask_server`,
:mod:`.integrations.django_server`: the stock instrumentations' spans, for less), or the
stock instrumentors' with ``server_instrumentation = "otel"``; the other frameworks and
the clients get the stock OpenTelemetry instrumentations.

One call instruments a Flask, FastAPI, Starlette or aiohttp app (server spans, and
journeys started from the session header/cookie) and every installed client library
:mod:`threadline.sdk.integrations.auto` knows (client spans, and ``traceparent`` +
``baggage`` injected into every outgoing request, baggage only to allowed hosts). The app's
type is recognised without importing a framework the service does not use, and
every step is idempotent, so calling it twice changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.sdk import setup
from threadline.sdk.guard import report_internal_error
from threadline.sdk.inbound import install_flask_hooks
from threadline.sdk.integrations import auto, flask_server, http_servers
from threadline.settings import SdkSettings

if TYPE_CHECKING:
    import fastapi
    import flask


def instrument(app: object | None = None) -> None:
    """Instrument ``app`` (Flask, FastAPI, Starlette or aiohttp) and every installed client.

    Clients are those :mod:`threadline.sdk.integrations.auto` knows: HTTP clients (with
    the baggage allow-list), gRPC, Celery, Django and threading.

    Calls ``configure()`` from the environment and ``threadline.toml`` if it has not run.
    Does nothing when tracing is disabled. Raises ``TypeError`` for an app it cannot
    instrument (use ``JourneyWSGIMiddleware`` / ``JourneyASGIMiddleware`` for those).
    """
    config = setup.active() or setup.configure()
    if not config.enabled:
        return
    if app is not None:
        if http_servers.is_instance(app, "flask", "Flask"):
            _instrument_flask(app, config.settings)  # type: ignore[arg-type]
        elif http_servers.is_instance(app, "fastapi", "FastAPI"):
            _instrument_fastapi(app, config.settings)  # type: ignore[arg-type]
        elif not http_servers.instrument_app(app, config.settings):
            raise TypeError(
                f"threadline.instrument() supports Flask and FastAPI apps (and Starlette and "
                f"aiohttp ones), not "
                f"{type(app).__module__}.{type(app).__qualname__}; wrap other apps with "
                "threadline.sdk.integrations.http_servers.wrap_wsgi or wrap_asgi"
            )
    try:
        auto.instrument_installed(config.settings)
    except Exception:
        report_internal_error("instrumenting installed libraries")


def _instrument_flask(app: flask.Flask, settings: SdkSettings) -> None:
    try:
        if settings.server_instrumentation == "otel":
            from opentelemetry.instrumentation.flask import FlaskInstrumentor

            if not flask_server.is_instrumented(app):
                FlaskInstrumentor().instrument_app(app)  # type: ignore[no-untyped-call]
        else:
            flask_server.instrument_flask(app)
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
    # Raises if the app has already started serving: middleware is fixed by then.
    http_servers.add_journey_middleware(app, settings)
