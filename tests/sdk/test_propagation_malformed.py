"""Malformed ``traceparent``, ``tracestate`` and ``baggage`` never raise into the service.

The propagator ``configure()`` installs runs inside every server's request handling;
whatever a client sends, extract returns a context. These tests run with internal
errors re-raised (``sdk/conftest.py``), so the guard cannot hide a parser that raises:
each case must be handled by the parsers themselves.
"""

from __future__ import annotations

from typing import Final

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from threadline.sdk.propagation import build_propagator

TRACE_ID: Final = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT: Final = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
HUGE: Final = "a" * 1_000_000

GARBAGE: Final[list[object]] = [
    "",
    " ",
    ",",
    "=",
    "\x00",
    "\r\n",
    "\ud800",  # a lone surrogate, as a server may decode undecodable bytes
    "é" * 300,
    HUGE,
    ",".join(["k=v"] * 10_000),
    "%",
    "%zz=%",
    "k=%E2%82",
    "k=v;;;=;",
    b"k=v",
    7,
    None,
    ["k=v", 7, None, b"x"],
    [7],
    (),
    object(),
]


class _AnyGetter(Getter[dict[str, object]]):
    """A getter that hands over whatever the carrier holds, as hand-written getters do."""

    def get(self, carrier: dict[str, object], key: str) -> list[str] | None:
        return carrier.get(key)  # type: ignore[return-value]

    def keys(self, carrier: dict[str, object]) -> list[str]:
        return list(carrier)


@pytest.mark.parametrize("field", ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid"])
@pytest.mark.parametrize("value", GARBAGE, ids=lambda value: repr(value)[:20])
def test_malformed_field_never_raises(field: str, value: object) -> None:
    """A field holding anything at all gives a context, never an exception."""
    context = build_propagator().extract({field: value}, Context(), _AnyGetter())
    assert isinstance(context, Context)


@pytest.mark.parametrize("value", GARBAGE, ids=lambda value: repr(value)[:20])
def test_malformed_tracestate_and_baggage_keep_the_traceparent(value: object) -> None:
    """Garbage in ``tracestate`` or ``baggage`` loses only that field: the trace continues from
    ``traceparent``, and valid baggage beside garbage baggage lines still arrives."""
    carrier = {
        "traceparent": TRACEPARENT,
        "tracestate": value,
        "baggage": [value, "session.id=s-1"] if isinstance(value, str) else value,
    }
    context = build_propagator().extract(carrier, Context(), _AnyGetter())
    parent = trace.get_current_span(context).get_span_context()
    assert f"{parent.trace_id:032x}" == TRACE_ID
    if isinstance(value, str):
        # Invalid baggage members are dropped one by one; the next line's member arrives.
        assert baggage.get_baggage("session.id", context) == "s-1"
