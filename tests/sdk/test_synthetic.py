"""Synthetic journeys: ``journey(synthetic=True)`` and the synthetic header mark test traffic
with ``journey.synthetic=true`` baggage, always sampled and stamped on every span."""

from __future__ import annotations

from typing import Final

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased

import threadline
from threadline.conventions import JOURNEY_SYNTHETIC
from threadline.sampling_rules import parse
from threadline.sdk.journey import current_journey
from threadline.sdk.processors import JourneyStampingProcessor
from threadline.sdk.propagation import InboundSession, build_propagator
from threadline.sdk.sampling.rule_sampler import RuleSampler

PROPAGATOR: Final = build_propagator(
    inbound_session=InboundSession(header="X-Session-Id", cookie="sid")
)


def test_synthetic_journey_puts_the_marker_in_baggage() -> None:
    """``synthetic=True`` adds ``journey.synthetic=true``; the default adds nothing."""
    with threadline.journey(journey_id="probe-1", synthetic=True):
        assert current_journey() == {"journey.id": "probe-1", "journey.synthetic": "true"}
    with threadline.journey(journey_id="real-1"):
        assert current_journey() == {"journey.id": "real-1"}


def test_synthetic_marker_is_stamped_on_every_span() -> None:
    """Spans started inside a synthetic journey carry the marker as an attribute."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(JourneyStampingProcessor(lambda user: user))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        threadline.journey(synthetic=True),
        tracer.start_as_current_span("outer"),
        tracer.start_as_current_span("inner"),
    ):
        pass
    assert {
        s.name: (s.attributes or {}).get(JOURNEY_SYNTHETIC) for s in exporter.get_finished_spans()
    } == {
        "inner": "true",
        "outer": "true",
    }


def test_synthetic_journeys_are_sampled_under_a_zero_rate() -> None:
    """A rule that keeps nothing still keeps a synthetic journey, and only it."""
    rules = parse({"default": {"probability": 0.0}})
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=RuleSampler("edge", rules)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("real"):
        pass
    with threadline.journey(synthetic=True), tracer.start_as_current_span("probe"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["probe"]


@pytest.mark.parametrize(
    ("carrier", "marked"),
    [
        pytest.param({"x-threadline-synthetic": "true"}, "true", id="header"),
        pytest.param({"x-threadline-synthetic": " 1 "}, "true", id="header-one"),
        pytest.param({"x-threadline-synthetic": "false"}, None, id="header-false"),
        pytest.param({"x-threadline-synthetic": "maybe"}, None, id="header-garbage"),
        pytest.param({"baggage": "journey.synthetic=true"}, "true", id="baggage"),
        pytest.param(
            {"baggage": "journey.synthetic=true", "x-threadline-synthetic": "false"},
            "true",
            id="header-never-clears-baggage",
        ),
        pytest.param({}, None, id="nothing"),
    ],
)
def test_inbound_header_marks_the_extracted_context(
    carrier: dict[str, str], marked: str | None
) -> None:
    """The synthetic header marks the request's context; a false one never clears a mark."""
    context = PROPAGATOR.extract(carrier, Context())
    assert baggage.get_baggage(JOURNEY_SYNTHETIC, context) == marked


def test_marker_travels_to_the_next_service() -> None:
    """The marker is injected into outgoing baggage, so the next service extracts it."""
    carrier: dict[str, str] = {}
    with threadline.journey(synthetic=True):
        PROPAGATOR.inject(carrier)
    downstream = PROPAGATOR.extract(carrier, Context())
    assert baggage.get_baggage(JOURNEY_SYNTHETIC, downstream) == "true"
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_fast_pipeline_keeps_the_marker_with_the_journey_keys() -> None:
    """The export pipelines' cached journey attributes include the marker."""
    from threadline.sdk.fast.journeys import JourneyKeys

    keys = JourneyKeys(lambda user: user)
    assert keys.of({"journey.id": "p", "journey.synthetic": "true"}) == (
        ("journey.id", "p"),
        ("journey.synthetic", "true"),
    )
    assert keys.of({"journey.id": "p"}) == (("journey.id", "p"),)
