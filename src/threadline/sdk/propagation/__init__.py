"""Context on the wire: W3C Trace Context Level 2, W3C Baggage, and B3 from Zipkin peers.

``build_propagator()`` returns the propagator ``configure()`` installs. The parts are
OpenTelemetry ``TextMapPropagator``s that can also be used on their own:

==================  =========================================================
module              job
==================  =========================================================
``traceparent``     parse/format ``traceparent`` (§3.2)
``tracestate``      parse/format ``tracestate`` (§3.3); ``Level2TraceState``
``tracecontext``    ``TraceContextPropagator``: the two fields together
``baggage``         ``BaggagePropagator``: the ``baggage`` header
``b3``              ``B3Propagator``: B3 single and multi headers
``composite``       ``ThreadlinePropagator`` and ``build_propagator()``
``session``         ``InboundSession``: ``session.id`` from a header or cookie
``fields``          reading a field's lines from a carrier
``remote_parent``   the span context read into / written from a ``Context``
==================  =========================================================
"""

from threadline.sdk.propagation.b3 import B3Propagator
from threadline.sdk.propagation.baggage import BaggagePropagator
from threadline.sdk.propagation.composite import ThreadlinePropagator, build_propagator
from threadline.sdk.propagation.session import InboundSession
from threadline.sdk.propagation.tracecontext import TraceContextPropagator
from threadline.sdk.propagation.tracestate import Level2TraceState

__all__ = [
    "B3Propagator",
    "BaggagePropagator",
    "InboundSession",
    "Level2TraceState",
    "ThreadlinePropagator",
    "TraceContextPropagator",
    "build_propagator",
]
