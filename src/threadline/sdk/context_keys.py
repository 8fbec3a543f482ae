"""The current span and the baggage of a ``Context``, read and written in one step.

The OpenTelemetry API keeps both under keys of the ``Context`` mapping
(``opentelemetry.trace.propagation._SPAN_KEY``, ``opentelemetry.baggage._BAGGAGE_KEY``)
and reaches them through a few layers of functions. The span pipeline and the
propagators read them for every span and every request, so this module reads those
keys directly. They are private names: each is checked once at import against the
public functions (``get_current_span``, ``baggage.get_all``/``set_baggage``), and if
a release changes them the public functions are used instead (slower, same answers).

The baggage mapping in a context is never changed in place (the API copies it on every
change), so callers may cache by its identity; it must not be changed here either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import baggage
from opentelemetry import trace as trace_api
from opentelemetry.context import Context, set_value
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext

_SPAN_KEY: Final[str | None] = getattr(trace_api.propagation, "_SPAN_KEY", None)
_BAGGAGE_KEY: Final[str | None] = getattr(baggage, "_BAGGAGE_KEY", None)
_INVALID: Final = trace_api.INVALID_SPAN
NO_BAGGAGE: Final[Mapping[str, object]] = {}


def _span_and_baggage_keys(ctx: Context) -> tuple[Span, Mapping[str, object]]:
    span = ctx.get(_SPAN_KEY)  # type: ignore[arg-type]
    if span is None or not isinstance(span, Span):
        span = _INVALID
    entries = ctx.get(_BAGGAGE_KEY)  # type: ignore[arg-type]
    return span, entries if isinstance(entries, dict) else NO_BAGGAGE


def _span_and_baggage_public(ctx: Context) -> tuple[Span, Mapping[str, object]]:
    return trace_api.get_current_span(ctx), baggage.get_all(ctx)


def _with_baggage_key(ctx: Context, entries: dict[str, object]) -> Context:
    return set_value(_BAGGAGE_KEY, entries, ctx)  # type: ignore[arg-type]


def _with_baggage_public(ctx: Context, entries: dict[str, object]) -> Context:
    ctx = baggage.clear(ctx)
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


def _keys_work() -> bool:
    if _SPAN_KEY is None or _BAGGAGE_KEY is None:
        return False
    try:
        probe = NonRecordingSpan(SpanContext(1, 2, False))
        ctx = baggage.set_baggage("probe", "1", trace_api.set_span_in_context(probe))
        found = _span_and_baggage_keys(ctx)
        empty = _span_and_baggage_keys(Context())
        written = _with_baggage_key(Context(), {"a": "1"})
        return (
            found[0] is probe
            and dict(found[1]) == {"probe": "1"}
            and empty[0] is _INVALID
            and not empty[1]
            and dict(baggage.get_all(written)) == {"a": "1"}
        )
    except Exception:
        return False


KEYS_WORK: Final = _keys_work()

# span_and_baggage(ctx): (the current span or INVALID_SPAN, the baggage mapping), as
# (trace.get_current_span(ctx), baggage.get_all(ctx)) give them.
span_and_baggage: Final = _span_and_baggage_keys if KEYS_WORK else _span_and_baggage_public
# with_baggage(ctx, entries): ctx whose baggage is exactly ``entries`` (kept, not copied).
with_baggage: Final = _with_baggage_key if KEYS_WORK else _with_baggage_public
