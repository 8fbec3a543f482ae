"""HTTP servers beyond Flask and FastAPI: Starlette, aiohttp, Django, any WSGI or ASGI app.

Each server gets server spans with the context extracted from the request (its stock
OpenTelemetry instrumentation; Django Threadline's own middleware, making the same
spans) and, inside them, the journey hook of
:mod:`threadline.sdk.inbound` (a journey started from the session header or cookie):

- :func:`instrument_app` recognises a Starlette or aiohttp application;
- :func:`instrument_django` adds both middlewares to ``settings.MIDDLEWARE`` (call it
  before the WSGI/ASGI handler is built, e.g. at the end of ``settings.py``): the server
  spans from Threadline's own middleware (:mod:`.django_server`) unless
  ``server_instrumentation = "otel"``;
- :func:`wrap_wsgi` / :func:`wrap_asgi` wrap any other WSGI or ASGI app.

The aiohttp instrumentation parents its span on the incoming context but does not
make that context current, so its journey baggage would not reach the handler; the
aiohttp journey middleware attaches the incoming baggage itself.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import baggage, context

from threadline.sdk import setup
from threadline.sdk.guard import report_internal_error
from threadline.sdk.inbound import (
    ASGIApp,
    JourneyASGIMiddleware,
    JourneyWSGIMiddleware,
    begin_from_environ,
    session_id_from,
    start_session_journey,
    wsgi_header_key,
)
from threadline.sdk.integrations.codec import context_from
from threadline.sdk.integrations.django_server import SERVER_SPAN_MIDDLEWARE
from threadline.settings import SdkSettings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from aiohttp import web

DJANGO_JOURNEY_MIDDLEWARE: Final = (
    "threadline.sdk.integrations.http_servers.JourneyDjangoMiddleware"
)
_AIOHTTP_MARK: Final = "_threadline_instrumented"


def wrap_wsgi(app: WSGIApplication, settings: SdkSettings | None = None) -> WSGIApplication:
    """``app`` with server spans and journeys: OpenTelemetry's WSGI middleware around ours."""
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    wrapped: WSGIApplication = OpenTelemetryMiddleware(JourneyWSGIMiddleware(app, settings))
    return wrapped


def wrap_asgi(app: ASGIApp, settings: SdkSettings | None = None) -> ASGIApp:
    """``app`` with server spans and journeys: OpenTelemetry's ASGI middleware around ours."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    wrapped: ASGIApp = OpenTelemetryMiddleware(JourneyASGIMiddleware(app, settings))
    return wrapped


def instrument_app(app: object, settings: SdkSettings) -> bool:
    """Instrument a Starlette or aiohttp app; False when ``app`` is neither."""
    if is_instance(app, "starlette.applications", "Starlette"):
        _instrument_starlette(app, settings)
        return True
    if is_instance(app, "aiohttp.web", "Application"):
        _instrument_aiohttp(app, settings)  # type: ignore[arg-type]
        return True
    return False


def is_instance(app: object, module_name: str, class_name: str) -> bool:
    """Whether ``app`` is a ``module_name.class_name``, without importing that module: an app
    of a framework must have imported it, so no module loaded means no match."""
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(app, cls)


def _instrument_starlette(app: Any, settings: SdkSettings) -> None:
    from opentelemetry.instrumentation.starlette import StarletteInstrumentor

    try:
        if not getattr(app, "_is_instrumented_by_opentelemetry", False):
            StarletteInstrumentor.instrument_app(app)
    except Exception:
        report_internal_error("instrumenting the Starlette app")
    add_journey_middleware(app, settings)


def add_journey_middleware(app: Any, settings: SdkSettings) -> None:
    """Add the journey middleware to a Starlette or FastAPI app, inside OpenTelemetry's."""
    if any(getattr(m, "cls", None) is JourneyASGIMiddleware for m in app.user_middleware):
        return
    if app.middleware_stack is not None:
        raise RuntimeError("instrument the app before it starts serving")
    from starlette.middleware import Middleware

    # user_middleware runs first-to-last from the outside in, and add_middleware would
    # put ours outermost, before OpenTelemetry's extracts the incoming context. (FastAPI
    # instrumentation before 0.5x adds its middleware there; later releases wrap the
    # whole stack instead, and ours then simply goes first.)
    otel_index = next(
        (i for i, m in enumerate(app.user_middleware) if "opentelemetry" in m.cls.__module__),
        -1,
    )
    app.user_middleware.insert(otel_index + 1, Middleware(JourneyASGIMiddleware, settings=settings))


def _instrument_aiohttp(app: web.Application, settings: SdkSettings) -> None:
    from opentelemetry.instrumentation import aiohttp_server

    if getattr(app, _AIOHTTP_MARK, False):
        return
    # The instrumentor sets the module state its middleware reads (and makes apps
    # created from now on instrumented); an app made earlier gets the middleware here.
    instrumentor = aiohttp_server.AioHttpServerInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    position = next(
        (
            index + 1
            for index, middleware in enumerate(app.middlewares)
            if getattr(middleware, "__module__", "") == aiohttp_server.__name__
        ),
        None,
    )
    # Outermost first: the server span, then the journey inside it. Raises if the app
    # is already running (its middleware list is frozen by then).
    if position is None:
        # Releases before 0.5x have one module-level middleware instead of a factory.
        factory = getattr(aiohttp_server, "create_aiohttp_middleware", None)
        app.middlewares.insert(0, factory() if factory else aiohttp_server.middleware)
        position = 1
    app.middlewares.insert(position, aiohttp_journey_middleware(settings))
    setattr(app, _AIOHTTP_MARK, True)


Handler = Callable[[Any], Awaitable[Any]]


def aiohttp_journey_middleware(settings: SdkSettings) -> Any:
    """aiohttp middleware: the incoming baggage, or a journey from the session header/cookie."""
    from aiohttp import web

    @web.middleware
    async def journey_middleware(request: web.Request, handler: Handler) -> Any:
        token = None
        try:
            token = _attach_inbound(request, settings)
        except Exception:
            report_internal_error("journey from inbound aiohttp request")
        try:
            return await handler(request)
        finally:
            if token is not None:
                context.detach(token)

    return journey_middleware


def _attach_inbound(request: web.Request, settings: SdkSettings) -> Any:
    headers = request.headers  # case-insensitive, repeated lines kept
    entries = baggage.get_all(context_from(headers.items()))
    if entries:
        ctx = context.get_current()
        for key, value in entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return context.attach(ctx)
    session_id = session_id_from(
        headers.get(settings.session_header), "; ".join(headers.getall("Cookie", ())), settings
    )
    return None if session_id is None else start_session_journey(session_id)


def instrument_django(settings: SdkSettings) -> bool:
    """Add the server-span and journey middlewares to Django's settings; False without Django.

    The server spans are Threadline's own (``django_server``) unless
    ``server_instrumentation = "otel"``, or the host already turned on
    ``DjangoInstrumentor``, which is then kept."""
    if "django" not in sys.modules:
        return False
    from django.conf import settings as django_settings
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if not django_settings.configured:
        return False
    stock = DjangoInstrumentor()
    middleware = list(django_settings.MIDDLEWARE)
    if stock.is_instrumented_by_opentelemetry or SERVER_SPAN_MIDDLEWARE in middleware:
        pass
    elif settings.server_instrumentation == "otel":
        stock.instrument()
        middleware = list(django_settings.MIDDLEWARE)
    else:
        middleware.insert(0, SERVER_SPAN_MIDDLEWARE)
    if DJANGO_JOURNEY_MIDDLEWARE not in middleware:
        span_position = next(
            (
                i
                for i, path in enumerate(middleware)
                if "opentelemetry" in path or path == SERVER_SPAN_MIDDLEWARE
            ),
            -1,
        )
        middleware.insert(span_position + 1, DJANGO_JOURNEY_MIDDLEWARE)
    django_settings.MIDDLEWARE = middleware
    return True


class JourneyDjangoMiddleware:
    """Django middleware starting a journey from the session header/cookie (sync views)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self._get_response = get_response
        self._settings = setup.active_settings()
        self._header_key = wsgi_header_key(self._settings)

    def __call__(self, request: Any) -> Any:
        token = None
        try:
            # META is the WSGI environ (ASGI requests build one too).
            token = begin_from_environ(request.META, self._header_key, self._settings)
        except Exception:
            report_internal_error("journey from inbound Django request")
        try:
            return self._get_response(request)
        finally:
            if token is not None:
                context.detach(token)
