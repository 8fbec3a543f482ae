"""B3 from Zipkin peers: single and multi headers, and the fallback behind W3C Trace Context.

Case ids name the part of https://github.com/openzipkin/b3-propagation they check.
"""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from threadline.sdk.propagation import B3Propagator, build_propagator
from threadline.sdk.propagation.b3 import parse_b3_single

TRACE_ID = "80f198ee56343ba864fe8b2a57d3eff7"
SPAN_ID = "e457b5a2e4d86bd1"
PARENT_ID = "05e3ac9a4f6e3b90"
W3C_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{W3C_TRACE_ID}-00f067aa0ba902b7-01"


def _parent(context: Context) -> SpanContext:
    return trace.get_current_span(context).get_span_context()


SINGLE = [
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-1", int(TRACE_ID, 16), True, id="single-sampled"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-0", int(TRACE_ID, 16), False, id="single-not-sampled"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-d", int(TRACE_ID, 16), True, id="single-debug-is-sampled"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}", int(TRACE_ID, 16), False, id="single-deferred"),
    pytest.param(
        f"{TRACE_ID}-{SPAN_ID}-1-{PARENT_ID}", int(TRACE_ID, 16), True, id="single-with-parent-id"
    ),
    pytest.param(
        f"{TRACE_ID[16:]}-{SPAN_ID}-1", int(TRACE_ID[16:], 16), True, id="single-64-bit-trace-id"
    ),
    pytest.param(f" {TRACE_ID}-{SPAN_ID}-1 ", int(TRACE_ID, 16), True, id="single-surrounding-ows"),
]


@pytest.mark.parametrize(("value", "trace_id", "sampled"), SINGLE)
def test_single_b3_header_gives_the_remote_parent(value: str, trace_id: int, sampled: bool) -> None:
    """A Zipkin peer's ``b3`` header continues its trace, with its sampling decision."""
    parent = _parent(B3Propagator().extract({"b3": value}))
    assert parent.trace_id == trace_id
    assert parent.span_id == int(SPAN_ID, 16)
    assert parent.is_remote
    assert parent.trace_flags.sampled is sampled


SINGLE_REJECTED = [
    pytest.param("1", id="single-sampling-state-only"),
    pytest.param("0", id="single-deny-only"),
    pytest.param(f"{TRACE_ID.upper()}-{SPAN_ID}-1", id="single-uppercase-trace-id"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID.upper()}-1", id="single-uppercase-span-id"),
    pytest.param(f"{TRACE_ID[:-1]}-{SPAN_ID}-1", id="single-trace-id-31-chars"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID[:-1]}-1", id="single-span-id-15-chars"),
    pytest.param(f"{'0' * 32}-{SPAN_ID}-1", id="single-zero-trace-id"),
    pytest.param(f"{TRACE_ID}-{'0' * 16}-1", id="single-zero-span-id"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-x", id="single-unknown-sampling-state"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-{PARENT_ID}", id="single-parent-without-sampling-state"),
    pytest.param(f"{TRACE_ID}-{SPAN_ID}-1-{PARENT_ID}-extra", id="single-extra-field"),
    pytest.param("", id="single-empty"),
]


@pytest.mark.parametrize("value", SINGLE_REJECTED)
def test_invalid_single_b3_header_is_ignored(value: str) -> None:
    """A ``b3`` header B3 does not define gives no remote parent."""
    assert parse_b3_single([value]) is None


def test_two_single_b3_headers_are_ignored() -> None:
    """Two ``b3`` field lines name no single parent, so neither is used."""
    assert parse_b3_single([f"{TRACE_ID}-{SPAN_ID}-1", f"{TRACE_ID}-{PARENT_ID}-1"]) is None


MULTI = [
    pytest.param({"x-b3-sampled": "1"}, True, id="multi-sampled"),
    pytest.param({"x-b3-sampled": "0"}, False, id="multi-not-sampled"),
    pytest.param({"x-b3-sampled": "true"}, True, id="multi-legacy-true"),
    pytest.param({"x-b3-sampled": "false"}, False, id="multi-legacy-false"),
    pytest.param({"x-b3-flags": "1"}, True, id="multi-debug-flag-is-sampled"),
    pytest.param({}, False, id="multi-deferred"),
    pytest.param({"x-b3-parentspanid": PARENT_ID, "x-b3-sampled": "1"}, True, id="multi-parent"),
]


@pytest.mark.parametrize(("extra", "sampled"), MULTI)
def test_multi_b3_headers_give_the_remote_parent(extra: dict[str, str], sampled: bool) -> None:
    """``X-B3-TraceId``/``X-B3-SpanId`` continue the peer's trace with its sampling decision."""
    carrier = {"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, **extra}
    parent = _parent(B3Propagator().extract(carrier))
    assert (parent.trace_id, parent.span_id) == (int(TRACE_ID, 16), int(SPAN_ID, 16))
    assert parent.trace_flags.sampled is sampled


MULTI_REJECTED = [
    pytest.param({"x-b3-traceid": TRACE_ID}, id="multi-missing-span-id"),
    pytest.param({"x-b3-spanid": SPAN_ID}, id="multi-missing-trace-id"),
    pytest.param({"x-b3-traceid": TRACE_ID.upper(), "x-b3-spanid": SPAN_ID}, id="multi-uppercase"),
    pytest.param({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID + "0"}, id="multi-long-span"),
    pytest.param({"x-b3-traceid": "0" * 16, "x-b3-spanid": SPAN_ID}, id="multi-zero-trace-id"),
]


@pytest.mark.parametrize("carrier", MULTI_REJECTED)
def test_invalid_multi_b3_headers_are_ignored(carrier: dict[str, str]) -> None:
    """Incomplete or malformed ``X-B3-*`` headers give no remote parent."""
    assert not _parent(B3Propagator().extract(carrier)).is_valid


def test_single_header_wins_over_multi_headers() -> None:
    """When a peer sends both forms, the single ``b3`` header is the one used."""
    carrier = {
        "b3": f"{TRACE_ID}-{SPAN_ID}-1",
        "x-b3-traceid": W3C_TRACE_ID,
        "x-b3-spanid": PARENT_ID,
    }
    assert _parent(B3Propagator().extract(carrier)).span_id == int(SPAN_ID, 16)


FALLBACK = [
    pytest.param(
        {"traceparent": TRACEPARENT, "b3": f"{TRACE_ID}-{SPAN_ID}-1"},
        int(W3C_TRACE_ID, 16),
        id="valid-traceparent-wins-over-b3",
    ),
    pytest.param({"b3": f"{TRACE_ID}-{SPAN_ID}-1"}, int(TRACE_ID, 16), id="b3-without-traceparent"),
    pytest.param(
        {"traceparent": f"ff-{W3C_TRACE_ID}-00f067aa0ba902b7-01", "b3": f"{TRACE_ID}-{SPAN_ID}-1"},
        int(TRACE_ID, 16),
        id="b3-behind-invalid-traceparent",
    ),
    pytest.param(
        {"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "1"},
        int(TRACE_ID, 16),
        id="multi-b3-without-traceparent",
    ),
    pytest.param({"b3": "garbage"}, 0, id="invalid-b3-and-no-traceparent"),
]


@pytest.mark.parametrize(("carrier", "trace_id"), FALLBACK)
def test_threadline_propagator_falls_back_to_b3(carrier: dict[str, str], trace_id: int) -> None:
    """W3C Trace Context decides the parent; B3 is read only when no valid traceparent came."""
    assert _parent(build_propagator().extract(carrier)).trace_id == trace_id


def test_b3_parent_carries_no_tracestate_and_baggage_still_arrives() -> None:
    """A B3 parent brings no tracestate (it belongs to a traceparent), while baggage is read."""
    carrier = {
        "b3": f"{TRACE_ID}-{SPAN_ID}-1",
        "tracestate": "congo=t61rcWkgMzE",
        "baggage": "session.id=s-1",
    }
    context = build_propagator().extract(carrier)
    assert len(_parent(context).trace_state) == 0
    assert baggage.get_baggage("session.id", context) == "s-1"


def test_b3_can_be_turned_off() -> None:
    """With ``accept_b3=False`` B3 headers are ignored and the request starts a new trace."""
    context = build_propagator(accept_b3=False).extract({"b3": f"{TRACE_ID}-{SPAN_ID}-1"})
    assert not _parent(context).is_valid


def _outgoing(propagator_kwargs: dict[str, bool]) -> dict[str, str]:
    span_context = SpanContext(int(TRACE_ID, 16), int(SPAN_ID, 16), False, TraceFlags(0x03))
    context = baggage.set_baggage(
        "k", "v", trace.set_span_in_context(NonRecordingSpan(span_context))
    )
    carrier: dict[str, str] = {}
    build_propagator(**propagator_kwargs).inject(carrier, context)
    return carrier


def test_only_w3c_headers_are_sent_by_default() -> None:
    """Threadline answers Zipkin peers in W3C Trace Context: no ``b3`` goes out by default."""
    assert _outgoing({}) == {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-03", "baggage": "k=v"}
    assert build_propagator().fields == {"traceparent", "tracestate", "baggage"}


def test_b3_is_sent_when_configured() -> None:
    """With ``emit_b3=True`` the single ``b3`` header goes out beside the W3C ones."""
    sent = _outgoing({"emit_b3": True})
    assert sent["b3"] == f"{TRACE_ID}-{SPAN_ID}-1"
    assert sent["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-03"
    assert "b3" in build_propagator(emit_b3=True).fields
