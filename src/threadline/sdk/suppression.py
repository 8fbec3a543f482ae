"""``suppress_instrumentation()``: the SDK's own HTTP requests are not traced.

The export and the sampling-rule poller run their requests inside it, so an HTTP
client instrumentation in the host (urllib3, requests, ...) does not make a span of
every export, which would be exported in turn. OpenTelemetry's
``opentelemetry.instrumentation.utils.suppress_instrumentation`` sets these same
context keys; they live in the API, so the SDK needs no instrumentation package to
set them (``pip install threadline`` is the API and the SDK alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from opentelemetry import context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

# The plain string key that instrumentations also read, for backward compatibility.
PLAIN_KEY: Final = "suppress_instrumentation"


@contextmanager
def suppress_instrumentation() -> Iterator[None]:
    """Instrumentations create no span for what runs inside this block."""
    suppressed = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)
    token = context.attach(context.set_value(PLAIN_KEY, True, suppressed))
    try:
        yield
    finally:
        context.detach(token)
