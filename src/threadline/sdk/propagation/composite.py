"""The one propagator Threadline installs: W3C Trace Context, then B3, plus W3C Baggage.

Extract takes the remote parent from ``traceparent``/``tracestate``; only when there is
no valid ``traceparent`` does it look for B3 headers from Zipkin peers (a B3 parent
never brings a ``tracestate``). Baggage is extracted either way; when it names no
``session.id``, the session header or cookie does, if one arrived (``session.py``).
Inject writes ``traceparent``, ``tracestate`` and ``baggage`` (and ``b3`` only when
asked to).

Propagation runs inside the host's request handling, so a failure here is reported
through the guard and the request goes on without the context instead of failing.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from threadline.sdk.guard import report_internal_error
from threadline.sdk.propagation.b3 import B3Propagator
from threadline.sdk.propagation.baggage import BaggagePropagator
from threadline.sdk.propagation.remote_parent import with_remote_parent
from threadline.sdk.propagation.session import InboundSession
from threadline.sdk.propagation.tracecontext import TraceContextPropagator


class ThreadlinePropagator(TextMapPropagator):
    """W3C Trace Context Level 2 with a B3 fallback on extract, and W3C Baggage."""

    def __init__(
        self,
        *,
        accept_b3: bool = True,
        emit_b3: bool = False,
        inbound_session: InboundSession | None = None,
    ) -> None:
        self._trace_context = TraceContextPropagator()
        self._inbound_session = inbound_session
        self._baggage = BaggagePropagator()
        # Decided here, not per request: a B3 part that would do nothing is left out.
        b3 = B3Propagator(emit=emit_b3)
        self._b3_extract = b3 if accept_b3 else None
        self._b3_inject = b3 if emit_b3 else None
        self._fields = frozenset(self._trace_context.fields | self._baggage.fields | b3.fields)

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """``context`` with the carrier's remote parent and baggage; never raises."""
        context = Context() if context is None else context
        try:
            span_context = self._trace_context.extract_span_context(carrier, getter)
            if span_context is None and self._b3_extract is not None:
                span_context = self._b3_extract.extract_span_context(carrier, getter)
            extracted = with_remote_parent(context, span_context)
            extracted = self._baggage.extract(carrier, extracted, getter)
            if self._inbound_session is not None:
                extracted = self._inbound_session.add_to(extracted, carrier, getter)
            return extracted
        except Exception:
            report_internal_error("extracting trace context")
            return context

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write ``traceparent``, ``tracestate`` and ``baggage`` for ``context``; never raises."""
        try:
            self._trace_context.inject(carrier, context, setter)
            self._baggage.inject(carrier, context, setter)
            if self._b3_inject is not None:
                self._b3_inject.inject(carrier, context, setter)
        except Exception:
            report_internal_error("injecting trace context")

    @property
    def fields(self) -> set[str]:
        return set(self._fields)


def build_propagator(
    *,
    accept_b3: bool = True,
    emit_b3: bool = False,
    inbound_session: InboundSession | None = None,
) -> TextMapPropagator:
    """The propagator to install with ``opentelemetry.propagate.set_global_textmap``.

    ``accept_b3`` reads B3 headers when no valid ``traceparent`` arrived; ``emit_b3``
    also writes the single ``b3`` header on the way out (off: Zipkin peers that read
    W3C Trace Context need nothing else); ``inbound_session`` names the header and
    cookie that give ``session.id`` when no baggage does.
    """
    return ThreadlinePropagator(
        accept_b3=accept_b3, emit_b3=emit_b3, inbound_session=inbound_session
    )
