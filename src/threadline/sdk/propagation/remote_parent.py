"""The span context a propagator reads into a ``Context`` or writes out of one.

Trace Context and B3 differ only in their header formats: both set what they read
as the remote parent of the context (:func:`with_remote_parent`), and both write
the current span's context only when it is valid (an invalid one names no trace to
continue).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext


def with_remote_parent(context: Context | None, span_context: SpanContext | None) -> Context:
    """``context`` (an empty one if None) with ``span_context`` as its remote parent, or
    unchanged when ``span_context`` is None."""
    context = Context() if context is None else context
    if span_context is None:
        return context
    return trace.set_span_in_context(NonRecordingSpan(span_context), context)


def outgoing_span_context(context: Context | None) -> SpanContext | None:
    """The context of the span current in ``context`` (the current context if None), or
    None when it is invalid and there is nothing to write."""
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None
