"""threadline.testing: in-process span capture and trace assertions for users' own tests."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import threadline
from threadline.testing import SpanCapture, assert_one_trace, services_in_order, trace_id_of

tracer = trace.get_tracer("tests.testing")


def test_fixture_captures_spans_with_journey_and_asserts_one_trace(
    threadline_spans: SpanCapture,
) -> None:
    """A connected trace with the journey on every span passes and returns its trace id."""
    with (
        threadline.journey(session_id="s-t"),
        tracer.start_as_current_span("root") as root,
        tracer.start_as_current_span("call", kind=SpanKind.CLIENT),
    ):
        pass
    trace_id = assert_one_trace(
        threadline_spans.spans,
        services=["test-service"],
        journey={"session.id": "s-t"},
        kinds={"call": SpanKind.CLIENT, "root": SpanKind.INTERNAL},
    )
    assert trace_id == f"{root.get_span_context().trace_id:032x}"
    assert services_in_order(threadline_spans.spans) == ["test-service"]
    assert [trace_id_of(s) for s in threadline_spans.named("call")] == [trace_id]


def test_capture_starts_empty_for_each_test(threadline_spans: SpanCapture) -> None:
    """Spans of an earlier test are not seen by the next one."""
    assert threadline_spans.spans == []


def test_broken_trace_missing_journey_and_wrong_service_fail(
    threadline_spans: SpanCapture,
) -> None:
    """Two traces, a span without the journey, or other services each fail the assertion."""
    with tracer.start_as_current_span("first"):
        pass
    with tracer.start_as_current_span("second"):
        pass
    with pytest.raises(AssertionError, match="expected one trace"):
        assert_one_trace(threadline_spans.spans)
    threadline_spans.clear()
    with tracer.start_as_current_span("no-journey"):
        pass
    with pytest.raises(AssertionError, match="carries"):
        assert_one_trace(threadline_spans.spans, journey={"session.id": "s-x"})
    with pytest.raises(AssertionError, match="services"):
        assert_one_trace(threadline_spans.spans, services=["checkout"])
    with pytest.raises(AssertionError, match="no spans"):
        assert_one_trace([])
