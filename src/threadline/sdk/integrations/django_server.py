"""Threadline's own Django server spans: what ``DjangoInstrumentor`` records, for less.

``threadline.instrument()`` puts :class:`ServerSpanMiddleware` first in
``settings.MIDDLEWARE`` by default (setting ``server_instrumentation = "threadline"``),
where ``DjangoInstrumentor`` would put its own. The span is the stock middleware's:
named ``{method} {route}`` from Django's URL resolver (the URL name, else the method,
when there is no route template), kind SERVER, the HTTP attributes of
:mod:`.server_spans` for a WSGI request, ``http.route`` once the view is known, the
status code, ERROR on a 5xx or on an exception the view raised (recorded as an event),
parented on the ``traceparent``/``tracestate``/``baggage`` of the request through the
global propagator. URLs ``OTEL_PYTHON_DJANGO_EXCLUDED_URLS`` (or
``OTEL_PYTHON_EXCLUDED_URLS``) names get none, as with the stock middleware. A
request Django serves over ASGI gets the attributes of
OpenTelemetry's ASGI instrumentation, as the stock middleware gives it.

What it leaves out (``server_instrumentation = "otel"`` keeps them): the HTTP server
metrics, ``OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS``,
captured request/response headers, request/response hooks and the SQL commenter
middleware (docs/instrumenting.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry import context, trace

from threadline.sdk.guard import report_internal_error
from threadline.sdk.integrations.server_spans import (
    HttpConventions,
    end_server_span,
    excluded_urls,
    request_attributes,
    response_propagator,
    server_tracer,
    set_response_status,
    start_server_span,
    warn_stock_only_settings,
)

DJANGO_SCOPE: Final = "opentelemetry.instrumentation.django"
SERVER_SPAN_MIDDLEWARE: Final = "threadline.sdk.integrations.django_server.ServerSpanMiddleware"
_STATE: Final = "_threadline_server_span"  # request attribute: [span, token, exception]
_detach: Final = context.detach
_tracer: trace.Tracer | None = None
_conventions: HttpConventions | None = None


def _conv_and_tracer() -> tuple[HttpConventions, trace.Tracer]:
    """Decided once per process, when Django builds the first handler."""
    global _tracer, _conventions
    if _tracer is None or _conventions is None:
        _conventions = HttpConventions.from_environment()
        _tracer = server_tracer(DJANGO_SCOPE, _conventions)
        warn_stock_only_settings("DJANGO")
    return _conventions, _tracer


class ServerSpanMiddleware:
    """Django middleware making the request's server span (sync, like the stock one;
    Django adapts it for async views)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._conv, self._tracer = _conv_and_tracer()
        self._excluded = excluded_urls("DJANGO")
        from django.urls import Resolver404, resolve

        self._resolve = resolve
        self._not_found = Resolver404

    def __call__(self, request: Any) -> Any:
        try:
            self._start(request)
        except Exception:
            report_internal_error("server span of a Django request")
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self._end(request, None, exc)
            raise
        self._end(request, response, None)
        return response

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        """The route template, known once Django has resolved the URL."""
        state = getattr(request, _STATE, None)
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) if match is not None else None
        if state is not None and route and state[0].is_recording():
            state[0].set_attribute("http.route", route)

    def process_exception(self, request: Any, exception: BaseException) -> None:
        """Kept for the end of the request: Django turns it into a 500 response."""
        state = getattr(request, _STATE, None)
        if state is not None:
            state[2] = exception

    def _start(self, request: Any) -> None:
        if self._excluded is not None and self._excluded.url_disabled(
            request.build_absolute_uri("?")
        ):
            return
        conv = self._conv
        if _is_asgi(request):
            attributes, carrier, getter = _asgi_request(request.scope, conv)
        else:
            carrier = request.META
            attributes, getter = request_attributes(carrier, conv), None
        span, token = start_server_span(
            self._tracer, self._span_name(request), carrier, attributes, None, getter
        )
        setattr(request, _STATE, [span, token, None])

    def _span_name(self, request: Any) -> str:
        """As the stock middleware names it: the route template, else the URL name."""
        method = self._conv.method(request.method.strip())
        if method == "_OTHER":
            return "HTTP"
        try:
            match = request.resolver_match or self._resolve(request.path)
        except self._not_found:
            return str(request.method)
        route = getattr(match, "route", None)
        if route:
            return f"{method} {route}"
        url_name = getattr(match, "url_name", None)
        return f"{method} {url_name}" if url_name else str(request.method)

    def _end(self, request: Any, response: Any, raised: BaseException | None) -> None:
        state = getattr(request, _STATE, None)
        if state is None:
            return
        try:
            delattr(request, _STATE)
            span, token, exception = state
            if response is not None:
                if _is_asgi(request):
                    _asgi_status(span, response.status_code, self._conv)
                else:
                    status = f"{response.status_code} {response.reason_phrase}"
                    set_response_status(span, status, self._conv)
                _inject_response(response)
            end_server_span(span, raised or exception)
            _detach(token)
        except Exception:
            report_internal_error("server span of a Django request")


def _is_asgi(request: Any) -> bool:
    # WSGIRequest carries the environ; ASGIRequest a scope (ASGI support is optional).
    return hasattr(request, "scope") and not hasattr(request, "environ")


def _inject_response(response: Any) -> None:
    propagator = response_propagator()
    if propagator is not None:
        propagator.inject(response)


def _asgi_request(scope: Mapping[str, Any], conv: HttpConventions) -> tuple[Any, Any, Any]:
    """Attributes, carrier and getter of a request served over ASGI: the stock ASGI
    instrumentation's own functions, as the stock Django middleware uses them."""
    from opentelemetry.instrumentation.asgi import asgi_getter, collect_request_attributes

    attributes = collect_request_attributes(scope, _stability_mode(conv))  # type: ignore[no-untyped-call]
    return attributes, scope, asgi_getter


def _asgi_status(span: trace.Span, status_code: int, conv: HttpConventions) -> None:
    from opentelemetry.instrumentation.asgi import set_status_code

    set_status_code(span, status_code, None, _stability_mode(conv))  # type: ignore[no-untyped-call]


def _stability_mode(conv: HttpConventions) -> Any:
    """The stock instrumentation's own value for the conventions chosen (its functions
    take it as an argument). The enum is private and was renamed
    (``_HTTPStabilityMode`` before 0.5x, ``_StabilityMode`` after); its values were not."""
    from opentelemetry.instrumentation import _semconv

    old_name, new_name = "_HTTPStabilityMode", "_StabilityMode"
    mode_type = getattr(_semconv, new_name, None) or getattr(_semconv, old_name)
    if conv.old and conv.new:
        return mode_type("http/dup")
    return mode_type("http" if conv.new else "default")
