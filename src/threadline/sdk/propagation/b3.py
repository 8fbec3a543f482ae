"""B3 (Zipkin) context, accepted from peers that do not speak W3C Trace Context.

https://github.com/openzipkin/b3-propagation

Extract reads the single header ``b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]``
and, when it is absent, the ``X-B3-TraceId`` / ``X-B3-SpanId`` / ``X-B3-Sampled`` /
``X-B3-Flags`` headers. Ids are lower-hex as B3 specifies; a 64-bit trace id is
left-padded to 128 bits. ``d`` (debug) and ``X-B3-Flags: 1`` mean sampled; a sampling
state that is absent ("defer") is read as not sampled, as OpenTelemetry's B3 propagator
does, because W3C trace-flags cannot say "undecided". A sampling state alone (``b3: 0``)
names no parent and is ignored.

Inject writes nothing unless ``emit`` is set: Threadline answers Zipkin peers in W3C
Trace Context. With ``emit`` it writes the single ``b3`` header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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

B3_SINGLE: Final = "b3"
B3_TRACE_ID: Final = "x-b3-traceid"
B3_SPAN_ID: Final = "x-b3-spanid"
B3_SAMPLED: Final = "x-b3-sampled"
B3_FLAGS: Final = "x-b3-flags"

_SINGLE: Final = re.compile(
    r"([0-9a-f]{32}|[0-9a-f]{16})-([0-9a-f]{16})(?:-([01d])(?:-([0-9a-f]{16}))?)?"
)
_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}|[0-9a-f]{16}")
_SPAN_ID: Final = re.compile(r"[0-9a-f]{16}")
# "1"/"0" per the spec; "true"/"false" from tracers that predate it, which B3 asks
# receivers to accept.
_SAMPLED_VALUES: Final = frozenset({"1", "d", "true"})
_OWS: Final = " \t"


def parse_b3_single(field_lines: Sequence[str]) -> SpanContext | None:
    """The remote parent in a single ``b3`` header, or None when absent or invalid."""
    if len(field_lines) != 1:
        return None
    match = _SINGLE.fullmatch(field_lines[0].strip(_OWS))
    if match is None:
        return None
    trace_id, span_id, sampling_state, _parent = match.groups()
    return _span_context(trace_id, span_id, sampling_state in _SAMPLED_VALUES)


def parse_b3_multi(
    trace_id: Sequence[str], span_id: Sequence[str], sampled: Sequence[str], flags: Sequence[str]
) -> SpanContext | None:
    """The remote parent in ``X-B3-*`` headers, or None when absent or invalid."""
    if len(trace_id) != 1 or len(span_id) != 1:
        return None
    trace_text = trace_id[0].strip(_OWS)
    span_text = span_id[0].strip(_OWS)
    if _TRACE_ID.fullmatch(trace_text) is None or _SPAN_ID.fullmatch(span_text) is None:
        return None
    is_sampled = (len(sampled) == 1 and sampled[0].strip(_OWS).lower() in _SAMPLED_VALUES) or (
        len(flags) == 1 and flags[0].strip(_OWS) == "1"
    )
    return _span_context(trace_text, span_text, is_sampled)


def format_b3_single(span_context: SpanContext) -> str:
    """The single ``b3`` header value for ``span_context``."""
    sampled = "1" if span_context.trace_flags.sampled else "0"
    return f"{span_context.trace_id:032x}-{span_context.span_id:016x}-{sampled}"


class B3Propagator(TextMapPropagator):
    """Extracts B3 single and multi headers; injects the single header only if ``emit``."""

    def __init__(self, *, emit: bool = False) -> None:
        self._emit = emit

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
        """The B3 parent the carrier holds; the single header wins over ``X-B3-*``."""
        single = field_values(getter, carrier, B3_SINGLE)
        if single:
            return parse_b3_single(single)
        return parse_b3_multi(
            field_values(getter, carrier, B3_TRACE_ID),
            field_values(getter, carrier, B3_SPAN_ID),
            field_values(getter, carrier, B3_SAMPLED),
            field_values(getter, carrier, B3_FLAGS),
        )

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write the single ``b3`` header when configured to emit B3; otherwise nothing."""
        if not self._emit:
            return
        span_context = outgoing_span_context(context)
        if span_context is not None:
            setter.set(carrier, B3_SINGLE, format_b3_single(span_context))

    @property
    def fields(self) -> set[str]:
        return {B3_SINGLE} if self._emit else set()


def _span_context(trace_id: str, span_id: str, sampled: bool) -> SpanContext | None:
    trace_id_value = int(trace_id, 16)  # a 64-bit id is the low half of a 128-bit one
    span_id_value = int(span_id, 16)
    if trace_id_value == 0 or span_id_value == 0:
        return None
    return SpanContext(
        trace_id=trace_id_value,
        span_id=span_id_value,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
