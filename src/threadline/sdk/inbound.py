"""Start a journey from an inbound request that arrives without one.

A request whose context has no ``session.id`` baggage (typically the first hop, from
a browser) starts a journey from the ``X-Session-Id`` header, else from the
``session_id`` cookie (names from settings). Baggage that arrived from an upstream
service always wins.

The propagator ``configure()`` installs already does this while the server
instrumentation extracts the incoming context (``propagation/session.py``), before
the server span starts, so the head sampler decides that span by the journey. The
hooks below run *inside* the instrumentation, after its span started, and act only
when the context still has no session: when another propagator is installed
globally. They stamp the server span directly and attach baggage so every span
below carries the key.

Three shapes of the same hook:

- :func:`install_flask_hooks` — ``before_request`` / ``teardown_request`` registered
  after ``FlaskInstrumentor``'s, so they run after its span starts and (Flask runs
  teardown functions in reverse) detach before it detaches its own context;
- :class:`JourneyWSGIMiddleware` — wrap any WSGI app, inside OpenTelemetry's WSGI middleware;
- :class:`JourneyASGIMiddleware` — pure ASGI, added as a Starlette/FastAPI middleware,
  which runs inside the OpenTelemetry ASGI middleware that FastAPI instrumentation installs.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextvars import Token
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import baggage, context, trace
from opentelemetry.context import Context

from threadline.conventions import SESSION_ID
from threadline.sdk import setup
from threadline.sdk.guard import report_internal_error
from threadline.sdk.propagation.session import clean_session_id, cookie_value
from threadline.settings import SdkSettings

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    import flask

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_FLASK_TOKEN_KEY: Final = "threadline.journey_token"
_FLASK_HOOKS_MARK: Final = "_threadline_journey_hooks"


def session_id_from(
    header: str | None, cookie_header: str | None, settings: SdkSettings
) -> str | None:
    """Session id from the session header, else from the session cookie."""
    return clean_session_id(header) or clean_session_id(
        cookie_value(cookie_header, settings.session_cookie)
    )


def start_session_journey(session_id: str) -> Token[Context]:
    """Attach baggage with ``session.id`` and stamp the current (server) span with it."""
    ctx = baggage.set_baggage(SESSION_ID, session_id)
    token = context.attach(ctx)
    try:
        span = trace.get_current_span(ctx)
        if span.is_recording():
            span.set_attribute(SESSION_ID, session_id)
    except Exception:
        # The caller must get the token back whatever happens, or the context leaks.
        report_internal_error("stamping the server span with the inbound session")
    return token


def _needs_journey() -> bool:
    return baggage.get_baggage(SESSION_ID) is None


def wsgi_header_key(settings: SdkSettings) -> str:
    """The WSGI environ key of the session header (computed once, not per request)."""
    return "HTTP_" + settings.session_header.upper().replace("-", "_")


def begin_from_environ(
    environ: Mapping[str, Any], header_key: str, settings: SdkSettings
) -> Token[Context] | None:
    """Start a journey from a WSGI-style environ (``header_key`` from :func:`wsgi_header_key`)
    unless baggage already carries one; the token to detach, or None."""
    if not _needs_journey():
        return None
    session_id = session_id_from(environ.get(header_key), environ.get("HTTP_COOKIE"), settings)
    return None if session_id is None else start_session_journey(session_id)


def install_flask_hooks(app: flask.Flask, settings: SdkSettings | None = None) -> None:
    """Register the journey hooks on ``app``; call after ``FlaskInstrumentor().instrument_app``."""
    if getattr(app, _FLASK_HOOKS_MARK, False):
        return
    resolved = settings or setup.active_settings()
    header_key = wsgi_header_key(resolved)
    import flask as flask_module  # only when a Flask app is being instrumented

    def _start_journey() -> None:
        try:
            # With Threadline's propagator the session is already in the baggage: decide
            # that first, since reaching the request through Flask's proxy costs more.
            if not _needs_journey():
                return
            environ = flask_module.request.environ
            token = begin_from_environ(environ, header_key, resolved)
            if token is not None:
                # The thread id guards against a copied request context (another
                # thread) tearing down first: a token only detaches where it attached.
                environ[_FLASK_TOKEN_KEY] = (token, threading.get_ident())
        except Exception:
            report_internal_error("journey from inbound Flask request")

    def _end_journey(exc: BaseException | None) -> None:
        try:
            environ = flask_module.request.environ
            entry = environ.get(_FLASK_TOKEN_KEY)
            if entry is None or entry[1] != threading.get_ident():
                return
            del environ[_FLASK_TOKEN_KEY]
            context.detach(entry[0])
        except Exception:
            report_internal_error("journey teardown of Flask request")

    # Appended after the instrumentor's hooks: before_request functions run in order
    # (its span exists when ours runs); teardown functions run in reverse (ours detaches
    # before it detaches, keeping context tokens last-in first-out).
    app.before_request(_start_journey)
    app.teardown_request(_end_journey)
    setattr(app, _FLASK_HOOKS_MARK, True)


class JourneyWSGIMiddleware:
    """WSGI middleware starting a journey from the session header/cookie.

    Place it inside OpenTelemetry's WSGI middleware:
    ``OpenTelemetryMiddleware(JourneyWSGIMiddleware(app))``.
    """

    def __init__(self, app: WSGIApplication, settings: SdkSettings | None = None) -> None:
        self._app = app
        self._settings = settings or setup.active_settings()
        self._header_key = wsgi_header_key(self._settings)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            token = begin_from_environ(environ, self._header_key, self._settings)
        except Exception:
            report_internal_error("journey from inbound WSGI request")
            token = None
        if token is None:
            return self._app(environ, start_response)
        journey_context = context.get_current()
        try:
            body = self._app(environ, start_response)
        finally:
            context.detach(token)
        return _BodyInContext(body, journey_context)


class _BodyInContext:
    """A WSGI response body whose chunks are produced with the journey context attached.

    The server iterates the body after ``__call__`` returned; attaching around each
    chunk (instead of across the whole iteration) keeps tokens strictly nested.
    """

    def __init__(self, body: Iterable[bytes], ctx: Context) -> None:
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._context = ctx

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = context.attach(self._context)
        try:
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)
        finally:
            context.detach(token)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class JourneyASGIMiddleware:
    """Pure ASGI middleware starting a journey from the session header/cookie.

    With FastAPI: ``app.add_middleware(JourneyASGIMiddleware)`` after
    ``FastAPIInstrumentor.instrument_app(app)`` (the instrumentor's middleware wraps all
    of the app's middleware, so this runs inside it).
    """

    def __init__(self, app: ASGIApp, settings: SdkSettings | None = None) -> None:
        self._app = app
        self._settings = settings or setup.active_settings()
        self._header = _asgi_header_name(self._settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        try:
            token = self._begin(scope)
        except Exception:
            report_internal_error("journey from inbound ASGI request")
            token = None
        if token is None:
            await self._app(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            context.detach(token)

    def _begin(self, scope: Scope) -> Token[Context] | None:
        if not _needs_journey():
            return None
        header: str | None = None
        cookies: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == self._header and header is None:
                header = value.decode("latin-1")
            elif name == b"cookie":
                # HTTP/2 may split cookies over several headers.
                cookies.append(value.decode("latin-1"))
        session_id = session_id_from(header, "; ".join(cookies), self._settings)
        return None if session_id is None else start_session_journey(session_id)


def _asgi_header_name(settings: SdkSettings) -> bytes:
    """The session header name as ASGI servers present it: lower-case latin-1 bytes."""
    return settings.session_header.lower().encode("latin-1")
