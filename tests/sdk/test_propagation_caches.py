"""The propagators' header caches: repeated headers are parsed once, and nothing leaks
between the contexts that share a parse."""

from __future__ import annotations

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from threadline.sdk.propagation import baggage as baggage_module
from threadline.sdk.propagation import build_propagator
from threadline.sdk.propagation import tracestate as tracestate_module
from threadline.sdk.propagation.tracestate import parse_tracestate

HEADERS = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    "baggage": "session.id=s-1,user.id=u-1;owner=shop",
}


def test_a_repeated_baggage_header_gives_the_same_entries_without_sharing_changes() -> None:
    """Two extracts of one header read alike; baggage set on one context, or merged with
    baggage already there, never shows in the other."""
    propagator = build_propagator()
    first = propagator.extract(HEADERS)
    second = propagator.extract(HEADERS, baggage.set_baggage("tenant", "t-9", Context()))
    changed = baggage.set_baggage("session.id", "s-2", first)
    assert dict(baggage.get_all(first)) == {"session.id": "s-1", "user.id": "u-1"}
    assert dict(baggage.get_all(second)) == {"tenant": "t-9", "session.id": "s-1", "user.id": "u-1"}
    assert baggage.get_baggage("session.id", changed) == "s-2"
    assert dict(baggage.get_all(propagator.extract(HEADERS))) == dict(baggage.get_all(first))


def test_injected_baggage_follows_every_change_of_the_baggage() -> None:
    """The last header injected is reused only for the very same baggage: a change, or
    properties that no longer match the value, give a new header."""
    propagator = build_propagator()
    extracted = propagator.extract(HEADERS)
    carriers = []
    for ctx in (
        extracted,
        extracted,
        baggage.set_baggage("user.id", "u-2", extracted),
        baggage.remove_baggage("user.id", extracted),
    ):
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        carriers.append(carrier.get("baggage"))
    assert carriers == [
        "session.id=s-1,user.id=u-1;owner=shop",
        "session.id=s-1,user.id=u-1;owner=shop",
        "session.id=s-1,user.id=u-2",
        "session.id=s-1",
    ]


def test_a_cached_tracestate_is_not_changed_by_its_users() -> None:
    """A parsed tracestate is shared by the requests that carried it; adding an entry makes
    a copy, so the next request's parse is the header as it arrived."""
    state = parse_tracestate([HEADERS["tracestate"]])
    added = state.add("vendor", "v1")
    again = parse_tracestate([HEADERS["tracestate"]])
    assert again is state
    assert list(again.keys()) == ["rojo", "congo"]
    assert list(added.keys()) == ["vendor", "rojo", "congo"]
    context = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(1), added)), Context()
    )
    carrier: dict[str, str] = {}
    build_propagator().inject(carrier, context)
    assert carrier["tracestate"] == "vendor=v1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def test_the_caches_stay_bounded_under_ever_new_headers() -> None:
    """Distinct headers (a hostile client's, or a session per request) do not grow the
    caches past their bound, and long headers are parsed without being kept."""
    propagator = build_propagator()
    for index in range(1000):
        ctx = propagator.extract(
            {**HEADERS, "baggage": f"session.id=s-{index}", "tracestate": f"k{index}=v"}
        )
        assert baggage.get_baggage("session.id", ctx) == f"s-{index}"
    long_value = "x" * 2000
    ctx = propagator.extract({**HEADERS, "baggage": f"note={long_value}"})
    assert baggage.get_baggage("note", ctx) == long_value
    assert len(baggage_module._parsed_cache) <= baggage_module.PARSED_CACHE_SIZE
    assert len(tracestate_module._parsed) <= tracestate_module.PARSED_CACHE_SIZE
    assert all(len("".join(key)) <= 1024 for key in baggage_module._parsed_cache)
