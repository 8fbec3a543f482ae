"""The HTTP server span of a WSGI request, as OpenTelemetry's WSGI instrumentation makes it.

Threadline's own Flask and Django instrumentations (:mod:`.flask_server`,
:mod:`.django_server`) build their server spans with these pieces, producing the spans
``opentelemetry-instrumentation-flask`` and ``-django`` produce (name, kind, attributes,
status, recorded exception, parent extracted from the request) without the work a
service never asked for: metrics, the URL rebuilt for excluded-URL checks, captured
headers, the SQL commenter context.

The attributes follow ``OTEL_SEMCONV_STABILITY_OPT_IN`` as the stock instrumentation
does: the older HTTP conventions by default (``http.method``, ``http.target``,
``http.status_code``...), the stable ones with ``http`` (``http.request.method``,
``url.path``, ``http.response.status_code``...), both with ``http/dup``. What the stock
code decides per request from the environment (the opt-in, which methods are known) is
decided once here, when the instrumentation is set up.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import ExcludeList, get_excluded_urls

from threadline.sdk.guard import logger

SEMCONV_OPT_IN_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
ALL_METHODS_ENV: Final = "OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS"
# The schema URLs the stock instrumentations give their tracer for each convention.
_OLD_SCHEMA: Final = "https://opentelemetry.io/schemas/1.11.0"
_NEW_SCHEMA: Final = "https://opentelemetry.io/schemas/1.21.0"
# What only the stock instrumentations read: set while Threadline makes the spans,
# they would be silently ignored, so they are named in a warning instead.
_STOCK_ONLY_ENV: Final = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
)
# RFC 9110 and RFC 5789 methods (and QUERY): anything else is reported as _OTHER.
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)
_SERVER: Final = SpanKind.SERVER
_INTERNAL: Final = SpanKind.INTERNAL
_INVALID_SPAN: Final = trace.INVALID_SPAN
_get_current_span: Final = trace.get_current_span
_get_current: Final = context.get_current
_attach: Final = context.attach
_set_span_in_context: Final = trace.set_span_in_context


def _synthetic_detector() -> Callable[[str], str | None]:
    """The stock user-agent classifier where the installed release has one (newer
    releases add ``user_agent.synthetic.type``; older ones do not)."""
    try:
        from opentelemetry.util.http import detect_synthetic_user_agent
    except ImportError:
        return lambda _: None
    detector: Callable[[str], str | None] = detect_synthetic_user_agent
    return detector


@dataclass(frozen=True, slots=True)
class HttpConventions:
    """Which HTTP semantic conventions the spans carry, decided once."""

    old: bool
    new: bool
    all_methods: bool
    synthetic: Callable[[str], str | None]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> HttpConventions:
        env = os.environ if environ is None else environ
        opt_in = {part.strip() for part in env.get(SEMCONV_OPT_IN_ENV, "").split(",")}
        duplicate = "http/dup" in opt_in
        new_only = "http" in opt_in and not duplicate
        return cls(
            old=not new_only,
            new=duplicate or new_only,
            all_methods=bool(env.get(ALL_METHODS_ENV)),
            synthetic=_synthetic_detector(),
        )

    @property
    def schema_url(self) -> str:
        return _NEW_SCHEMA if self.new else _OLD_SCHEMA

    def method(self, raw: str) -> str:
        """The method as the conventions report it (``_OTHER`` when unknown)."""
        upper = raw.upper()
        return upper if self.all_methods or upper in _KNOWN_METHODS else "_OTHER"


def server_tracer(
    scope: str, conventions: HttpConventions, tracer_provider: trace.TracerProvider | None = None
) -> trace.Tracer:
    """The tracer of the server spans, under the stock instrumentation's scope name: the
    spans are the ones that instrumentation would make, and queries keyed on the scope
    keep finding them (the version says which code made them)."""
    try:
        version = f"threadline {importlib.metadata.version('threadline')}"
    except importlib.metadata.PackageNotFoundError:
        version = "threadline"
    return trace.get_tracer(scope, version, tracer_provider, schema_url=conventions.schema_url)


def excluded_urls(framework: str) -> ExcludeList | None:
    """The URLs ``OTEL_PYTHON_{framework}_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``)
    keeps out of tracing, read as the stock instrumentation reads them (health checks,
    mostly); None when neither is set, so a request pays nothing for the check."""
    if not (
        os.environ.get(f"OTEL_PYTHON_{framework}_EXCLUDED_URLS")
        or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    ):
        return None
    return get_excluded_urls(framework)


def warn_stock_only_settings(framework: str, environ: Mapping[str, str] | None = None) -> None:
    """Warn about set environment variables that only the stock instrumentation of
    ``framework`` (``FLASK``, ``DJANGO``) reads."""
    env = os.environ if environ is None else environ
    names = list(_STOCK_ONLY_ENV)
    if framework == "DJANGO":
        names.append("OTEL_PYTHON_DJANGO_TRACED_REQUEST_ATTRS")
    ignored = [name for name in names if env.get(name)]
    if ignored:
        logger.warning(
            "Threadline makes the %s server spans itself and does not read %s; set "
            'server_instrumentation = "otel" for the stock instrumentation that does',
            framework.capitalize(),
            ", ".join(ignored),
        )


class WsgiGetter(Getter[Mapping[str, Any]]):
    """Reads request headers from a WSGI environ (``traceparent`` is ``HTTP_TRACEPARENT``)."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        environ_key = self._keys.get(key)
        if environ_key is None:
            # A propagator asks for the same few names every time.
            environ_key = "HTTP_" + key.upper().replace("-", "_")
            if len(self._keys) < 64:
                self._keys[key] = environ_key
        value = carrier.get(environ_key)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


WSGI_GETTER: Final = WsgiGetter()


def request_attributes(environ: Mapping[str, Any], conv: HttpConventions) -> dict[str, Any]:
    """The request attributes the stock WSGI instrumentation collects, in its order."""
    old, new = conv.old, conv.new
    attributes: dict[str, Any] = {}
    raw_method = str(environ.get("REQUEST_METHOD", "")).strip()
    method = conv.method(raw_method)
    if new and raw_method != method:
        attributes["http.request.method_original"] = raw_method
    if method:
        if old:
            attributes["http.method"] = method
        if new:
            attributes["http.request.method"] = method
    server_name = environ.get("SERVER_NAME")
    if old and server_name:
        attributes["http.server_name"] = server_name
    scheme = environ.get("wsgi.url_scheme")
    if scheme:
        if old:
            attributes["http.scheme"] = scheme
        if new:
            attributes["url.scheme"] = scheme
    host = environ.get("HTTP_HOST")
    if host:
        if old:
            attributes["net.host.name"] = host
            attributes["http.host"] = host
        if new:
            attributes["server.address"] = host
    _set_int(attributes, environ.get("SERVER_PORT"), "net.host.port", "server.port", conv)
    target = environ.get("RAW_URI")
    if target is None:
        target = environ.get("REQUEST_URI")
    if target:
        if old:
            attributes["http.target"] = target
        if new:
            path, query = environ.get("PATH_INFO"), environ.get("QUERY_STRING")
            if path:
                attributes["url.path"] = path
            if query:
                attributes["url.query"] = query
    elif old:
        attributes["http.url"] = _request_url(environ)
    remote_addr = environ.get("REMOTE_ADDR")
    if remote_addr:
        if old:
            attributes["net.peer.ip"] = remote_addr
        if new:
            attributes["client.address"] = remote_addr
    _set_int(attributes, environ.get("REMOTE_PORT"), "net.peer.port", "client.port", conv)
    remote_host = environ.get("REMOTE_HOST")
    if remote_host and remote_host != remote_addr:
        if old:
            attributes["net.peer.name"] = remote_host
        if new:
            attributes["client.address"] = remote_host
    user_agent = environ.get("HTTP_USER_AGENT")
    if user_agent:
        if old:
            attributes["http.user_agent"] = user_agent
        if new:
            attributes["user_agent.original"] = user_agent
        synthetic = conv.synthetic(user_agent)
        if synthetic:
            attributes["user_agent.synthetic.type"] = synthetic
    flavor = str(environ.get("SERVER_PROTOCOL", ""))
    if flavor.upper().startswith("HTTP/"):
        flavor = flavor[5:]
    if flavor:
        if old:
            attributes["http.flavor"] = flavor
        if new:
            attributes["network.protocol.version"] = flavor
    return attributes


def _set_int(
    attributes: dict[str, Any], value: object, old_key: str, new_key: str, conv: HttpConventions
) -> None:
    if not value:
        return
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return
    if conv.old:
        attributes[old_key] = number
    if conv.new:
        attributes[new_key] = number


def _request_url(environ: Mapping[str, Any]) -> str:
    """The full URL as the stock code reports it, for servers that do not pass the raw
    target: user info removed (newer releases also redact known secret query keys)."""
    from wsgiref.util import request_uri

    import opentelemetry.util.http as http_util

    redact: Callable[[str], str] = getattr(
        http_util, "redact_url", http_util.remove_url_credentials
    )
    return str(redact(request_uri(dict(environ))))


def span_name(environ: Mapping[str, Any], route: str | None, conv: HttpConventions) -> str:
    """``{method} {route}``; without a route (no match: 404) ``{method} {path}``."""
    method = conv.method(str(environ.get("REQUEST_METHOD", "")).strip())
    if route is not None:
        return f"{'HTTP' if method == '_OTHER' else method} {route}"
    if method == "_OTHER":
        return "HTTP"
    path = str(environ.get("PATH_INFO", "")).strip()
    return f"{method} {path}" if method and path else method


def start_server_span(
    tracer: trace.Tracer,
    name: str,
    environ: Mapping[str, Any],
    attributes: dict[str, Any],
    start_time: int | None,
    getter: Getter[Any] | None = None,
) -> tuple[trace.Span, object]:
    """A SERVER span parented on the context extracted from the request, made current
    (an INTERNAL one under the current span when a server span is already running,
    e.g. a WSGI app mounted in another); returns the span and the token to detach.

    The stock code attaches twice (the extracted context, then the span in it); one
    context holding both is the same to everything below, and one attach cheaper."""
    if _get_current_span() is _INVALID_SPAN:
        ctx: Context = propagate.extract(environ, getter=getter or WSGI_GETTER)
        kind = _SERVER
    else:
        ctx = _get_current()
        kind = _INTERNAL
    span = tracer.start_span(name, ctx, kind, attributes, start_time=start_time)
    return span, _attach(_set_span_in_context(span, ctx))


def set_response_status(span: trace.Span, status_line: str, conv: HttpConventions) -> None:
    """The status code attributes, and ERROR for a 5xx (or a status line without a code)."""
    if not span.is_recording():
        return
    code_text = status_line.split(" ", 1)[0]
    try:
        code = int(code_text)
    except ValueError:
        if conv.new:
            span.set_attribute("error.type", code_text)
        span.set_status(Status(StatusCode.ERROR, "Non-integer HTTP status: " + code_text))
        return
    if conv.old:
        span.set_attribute("http.status_code", code)
    if conv.new:
        span.set_attribute("http.response.status_code", code)
    if code < 100 or code >= 500:  # http_status_to_status_code for a server span
        if conv.new:
            span.set_attribute("error.type", code_text)
        span.set_status(Status(StatusCode.ERROR))


def end_server_span(span: trace.Span, exc: BaseException | None) -> None:
    """End the span as ``use_span`` ends it: an escaping exception recorded and ERROR."""
    if exc is not None and span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end()


def inject_response_headers(headers: list[tuple[str, str]]) -> None:
    """Trace headers on the response, when the host installed a response propagator
    (``opentelemetry.instrumentation.propagators``), as the stock instrumentation does."""
    propagator = response_propagator()
    if propagator is not None:
        propagator.inject(headers, setter=_LIST_SETTER)


def _response_propagator_getter() -> Callable[[], Any]:
    try:
        from opentelemetry.instrumentation.propagators import get_global_response_propagator
    except ImportError:  # opentelemetry-instrumentation absent: nobody can have set one
        return lambda: None
    getter: Callable[[], Any] = get_global_response_propagator
    return getter


response_propagator: Final = _response_propagator_getter()


class _ListSetter:
    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key, value))


_LIST_SETTER: Final = _ListSetter()
