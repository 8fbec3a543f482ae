"""HTTP clients: requests, httpx (sync and async), aiohttp and urllib3.

Each client is instrumented by its stock OpenTelemetry instrumentation when both the
library and the instrumentation are installed; each gets a request hook that applies
the baggage allow-list (:mod:`threadline.sdk.allowlist`) to the request's host. The
instrumentations call the hook after the client span starts and before they inject,
which is exactly when the decision must be taken.

Retries: every attempt of a retried call goes through the client again, so each one
is its own client span in the same trace; the instrumentations record
``http.request.resend_count`` only where the library exposes it, so
:func:`resend_attempt` lets retry loops record it themselves. A response with a 5xx
status or an exception (a timeout) marks the client span as an error (stock
behaviour).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

from opentelemetry import trace

from threadline.sdk.allowlist import DestinationDecisions, HostAllowList, mark_destination
from threadline.sdk.guard import report_internal_error

RESEND_COUNT: Final = "http.request.resend_count"

_resend_count: ContextVar[int] = ContextVar("threadline_http_resend_count", default=0)


@contextmanager
def resend_attempt(attempt: int) -> Any:
    """Inside the block, client spans record ``http.request.resend_count = attempt - 1``.

    Use in a retry loop: ``with resend_attempt(n): requests.get(...)`` for attempt ``n``
    (1 for the first try, which records nothing, as the conventions ask).
    """
    token = _resend_count.set(max(attempt - 1, 0))
    try:
        yield
    finally:
        _resend_count.reset(token)


def _hook(allow_list: HostAllowList) -> Callable[[trace.Span, object], None]:
    decisions = DestinationDecisions(allow_list)

    def on_request(span: trace.Span, url: object) -> None:
        try:
            mark_destination(span, url, decisions)
            resends = _resend_count.get()
            if resends and span.is_recording():
                span.set_attribute(RESEND_COUNT, resends)
        except Exception:
            report_internal_error("HTTP client request hook")

    return on_request


def instrument_http_clients(allow_list: HostAllowList) -> list[str]:
    """Turn on the instrumentation of every installed HTTP client; returns the ones now on."""
    hook = _hook(allow_list)
    enabled = []
    for name, install in (
        ("requests", _requests),
        ("httpx", _httpx),
        ("aiohttp", _aiohttp),
        ("urllib3", _urllib3),
    ):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            if install(hook):
                enabled.append(name)
        except ImportError:
            continue  # the library is here, its instrumentation is not
        except Exception:
            report_internal_error(f"instrumenting {name}")
    return enabled


def _requests(hook: Callable[[trace.Span, object], None]) -> bool:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=lambda span, request: hook(span, request.url))
    return True


def _httpx(hook: Callable[[trace.Span, object], None]) -> bool:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    async def async_hook(span: trace.Span, request: Any) -> None:
        hook(span, request.url)

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(
            request_hook=lambda span, request: hook(span, request.url),
            async_request_hook=async_hook,
        )
    return True


def _aiohttp(hook: Callable[[trace.Span, object], None]) -> bool:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrumentor = AioHttpClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=lambda span, params: hook(span, params.url))
    return True


def _urllib3(hook: Callable[[trace.Span, object], None]) -> bool:
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    instrumentor = URLLib3Instrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=lambda span, pool, info: hook(span, info.url))
    return True
