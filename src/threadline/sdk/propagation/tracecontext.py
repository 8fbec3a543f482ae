"""W3C Trace Context Level 2 as an OpenTelemetry ``TextMapPropagator``.

Reads ``traceparent`` and ``tracestate`` into a remote ``SpanContext`` and writes the
current span's context back out. ``tracestate`` is read only when ``traceparent`` is
valid: "If the vendor failed to parse traceparent, it MUST NOT attempt to parse
tracestate" (§3.3); an invalid ``traceparent`` therefore leaves the context without a
remote parent, and the next span starts a new trace.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import SpanContext, TraceFlags

from threadline.sdk.propagation.fields import field_values
from threadline.sdk.propagation.remote_parent import outgoing_span_context, with_remote_parent
from threadline.sdk.propagation.traceparent import format_traceparent, parse_traceparent
from threadline.sdk.propagation.tracestate import format_tracestate, parse_tracestate

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"


class TraceContextPropagator(TextMapPropagator):
    """``traceparent`` + ``tracestate`` exactly as W3C Trace Context Level 2 specifies."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """``context`` with the carrier's remote parent set, or unchanged if it has none."""
        return with_remote_parent(context, self.extract_span_context(carrier, getter))

    def extract_span_context(
        self,
        carrier: CarrierT,
        getter: Getter[CarrierT] = default_getter,
    ) -> SpanContext | None:
        """The remote parent the carrier holds, or None when its ``traceparent`` is absent or
        invalid."""
        parent = parse_traceparent(field_values(getter, carrier, TRACEPARENT))
        if parent is None:
            return None
        return SpanContext(
            trace_id=parent.trace_id,
            span_id=parent.parent_id,
            is_remote=True,
            trace_flags=TraceFlags(parent.trace_flags),
            trace_state=parse_tracestate(field_values(getter, carrier, TRACESTATE)),
        )

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write the current span's ``traceparent`` (and ``tracestate`` if any) to the carrier."""
        span_context = outgoing_span_context(context)
        if span_context is None:
            return
        setter.set(
            carrier,
            TRACEPARENT,
            format_traceparent(
                span_context.trace_id, span_context.span_id, span_context.trace_flags
            ),
        )
        if span_context.trace_state:
            tracestate = format_tracestate(span_context.trace_state)
            if tracestate:
                setter.set(carrier, TRACESTATE, tracestate)

    @property
    def fields(self) -> set[str]:
        return {TRACEPARENT, TRACESTATE}
