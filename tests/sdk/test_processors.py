"""Journey stamping: every span started under journey baggage carries the journey keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from threadline.sdk.processors import JourneyStampingProcessor
from threadline.sdk.pseudonym import Pseudonymizer

PSEUDONYMIZE = Pseudonymizer("stamping-key")


@pytest.fixture
def traced() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(JourneyStampingProcessor(PSEUDONYMIZE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _baggage(**entries: str) -> context.Context:
    ctx = context.Context()
    for key, value in entries.items():
        ctx = baggage.set_baggage(key.replace("_", "."), value, ctx)
    return ctx


def test_stamps_keys_from_current_baggage(traced: tuple[Tracer, InMemorySpanExporter]) -> None:
    """Spans started while journey baggage is current carry session.id, user.id and journey.id."""
    tracer, exporter = traced
    pseudonym = PSEUDONYMIZE("alice")
    token = context.attach(_baggage(session_id="s-1", user_id=pseudonym, journey_id="j-1"))
    try:
        with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
            pass
    finally:
        context.detach(token)
    journey = {"session.id": "s-1", "user.id": pseudonym, "journey.id": "j-1"}
    assert [dict(s.attributes or {}) for s in exporter.get_finished_spans()] == [journey, journey]


def test_uses_the_explicit_parent_context(traced: tuple[Tracer, InMemorySpanExporter]) -> None:
    """A span started with an explicit context takes the journey from that context, not the current
    one."""
    tracer, exporter = traced
    tracer.start_span("explicit", context=_baggage(session_id="s-explicit")).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"session.id": "s-explicit"}


def test_clear_user_id_from_upstream_is_pseudonymised(
    traced: tuple[Tracer, InMemorySpanExporter],
) -> None:
    """A raw user.id that arrived in baggage from a peer without Threadline is not stamped in
    clear."""
    tracer, exporter = traced
    tracer.start_span("from-peer", context=_baggage(user_id="bob@example.com")).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"user.id": PSEUDONYMIZE("bob@example.com")}


def test_other_baggage_is_not_stamped(traced: tuple[Tracer, InMemorySpanExporter]) -> None:
    """Only the journey keys are copied; other baggage entries stay off the span."""
    tracer, exporter = traced
    ctx = baggage.set_baggage("tenant", "acme", _baggage(session_id="s-2"))
    tracer.start_span("mixed", context=ctx).end()
    tracer.start_span("none", context=context.Context()).end()
    assert [dict(s.attributes or {}) for s in exporter.get_finished_spans()] == [
        {"session.id": "s-2"},
        {},
    ]
