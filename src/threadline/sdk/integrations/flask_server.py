"""Threadline's own Flask server spans: what ``FlaskInstrumentor`` records, for less.

``threadline.instrument(app)`` uses this by default (setting
``server_instrumentation = "threadline"``). The span is the stock instrumentation's:
named ``{method} {route}`` (``{method} {path}`` when no route matched), kind SERVER,
the HTTP attributes of :mod:`.server_spans`, ``http.route``, the status code, ERROR on a
5xx or an exception escaping the view (recorded as an event), parented on the
``traceparent``/``tracestate``/``baggage`` of the request through the global
propagator, started when the request entered the app and ended at teardown. URLs
``OTEL_PYTHON_FLASK_EXCLUDED_URLS`` (or ``OTEL_PYTHON_EXCLUDED_URLS``) names get none,
as with the stock instrumentation.

The same three places as the stock instrumentation, because the route is known only
once Flask has matched the URL and the sampler must see the span's real name:

- ``app.wsgi_app`` wrapped: notes the start time, and sets the status attributes when
  the app calls ``start_response``;
- a ``before_request`` function: starts the span and makes it current;
- a ``teardown_request`` function: ends it (with the escaping exception) and detaches.

What it leaves out (``server_instrumentation = "otel"`` keeps them): the HTTP server
metrics, captured request/response headers,
request/response hooks and the SQL commenter context (docs/instrumenting.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context, trace

from threadline.sdk.guard import report_internal_error
from threadline.sdk.integrations.server_spans import (
    HttpConventions,
    end_server_span,
    excluded_urls,
    inject_response_headers,
    request_attributes,
    server_tracer,
    set_response_status,
    span_name,
    start_server_span,
    warn_stock_only_settings,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    import flask

FLASK_SCOPE: Final = "opentelemetry.instrumentation.flask"
_MARK: Final = "_threadline_server_spans"
_STOCK_MARK: Final = "_is_instrumented_by_opentelemetry"
_START_KEY: Final = "threadline.request_start_ns"
# (span, token, request context): the context guards against a copied request context
# (copy_current_request_context) tearing the span down before the request's own does.
_SPAN_KEY: Final = "threadline.server_span"
_time_ns: Final = time.time_ns
_detach: Final = context.detach


def is_instrumented(app: flask.Flask) -> bool:
    """Whether ``app`` already has server spans, from this module or ``FlaskInstrumentor``."""
    return bool(getattr(app, _MARK, False) or getattr(app, _STOCK_MARK, False))


def instrument_flask(
    app: flask.Flask,
    conventions: HttpConventions | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> None:
    """Give ``app`` server spans (from the global TracerProvider unless one is given);
    nothing when it already has them, from either side."""
    if is_instrumented(app):
        return
    from flask.globals import request_ctx

    conv = conventions or HttpConventions.from_environment()
    warn_stock_only_settings("FLASK")
    excluded = excluded_urls("FLASK")
    tracer = server_tracer(FLASK_SCOPE, conv, tracer_provider)
    current_request_context: Callable[[], Any] = request_ctx._get_current_object  # type: ignore[attr-defined]
    wsgi_app = app.wsgi_app

    def traced_wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[_START_KEY] = _time_ns()

        def traced_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            entry = environ.get(_SPAN_KEY)
            if entry is not None:
                try:
                    inject_response_headers(headers)
                    set_response_status(entry[0], status, conv)
                except Exception:
                    report_internal_error("status of a Flask server span")
            return start_response(status, headers, *args)

        return wsgi_app(environ, traced_start_response)

    def start_span() -> None:
        try:
            request_context = current_request_context()
            request = request_context.request
            if excluded is not None and excluded.url_disabled(request.url):
                return
            environ = request.environ
            rule = request.url_rule
            route = None if rule is None else rule.rule
            attributes = request_attributes(environ, conv)
            if route is not None:
                attributes["http.route"] = route
            span, token = start_server_span(
                tracer,
                span_name(environ, route, conv),
                environ,
                attributes,
                environ.get(_START_KEY),
            )
            environ[_SPAN_KEY] = (span, token, request_context)
        except Exception:
            report_internal_error("server span of a Flask request")

    def end_span(exc: BaseException | None) -> None:
        try:
            request_context = current_request_context()
            environ = request_context.request.environ
            entry = environ.get(_SPAN_KEY)
            if entry is None or entry[2] is not request_context:
                return
            del environ[_SPAN_KEY]
            end_server_span(entry[0], exc)
            _detach(entry[1])
        except Exception:
            report_internal_error("server span teardown of a Flask request")

    app.wsgi_app = traced_wsgi_app  # type: ignore[method-assign]
    # Registered before the journey hooks (inbound.install_flask_hooks): before_request
    # functions run in order, so the span exists when the journey hook stamps it;
    # teardown functions run in reverse, so the journey detaches before the span does.
    app.before_request(start_span)
    app.teardown_request(end_span)
    setattr(app, _MARK, True)
