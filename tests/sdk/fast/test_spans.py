"""The fast pipeline's spans behave as the OpenTelemetry SDK's do (the SDK is the reference).

Each test builds a local provider (no global one: that is the subprocess tests' job)
and sees the spans through the SDK's own ``SimpleSpanProcessor`` and
``InMemorySpanExporter``, added through the adapter, or through a real export to the
loopback collector.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from threadline.sampling_rules import HeadRule, SamplingRules
from threadline.sdk.fast import FastTracerProvider
from threadline.sdk.fast.span import FastSpan
from threadline.sdk.sampling.rule_sampler import RuleSampler

RESOURCE = Resource.create({"service.name": "fast-tests"})
Workload = Callable[[trace.Tracer], None]


def fast_provider(
    rules: SamplingRules | None = None, limits: SpanLimits | None = None, stamp: bool = False
) -> FastTracerProvider:
    rule_sampler = RuleSampler("fast-tests", rules)
    return FastTracerProvider(
        RESOURCE,
        ParentBased(rule_sampler),
        rule_sampler,
        lambda user_id: f"pseudo-{user_id}",
        stamp=stamp,
        span_limits=limits,
        shutdown_on_exit=False,
    )


def captured(provider: FastTracerProvider | TracerProvider) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def fast() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    provider = fast_provider()
    exporter = captured(provider)
    yield provider.get_tracer("tests"), exporter
    provider.shutdown()


def _shape(span: ReadableSpan, names: dict[int, str]) -> dict[str, Any]:
    """What a span says, ids replaced by the names of the spans they point at."""
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": names.get(span.parent.span_id) if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "events": [
            (e.name, {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"})
            for e in span.events
        ],
        "dropped_events": span.dropped_events,
        "links": [
            (names.get(link.context.span_id, "?"), dict(link.attributes or {}))
            for link in span.links
        ],
        "status": (span.status.status_code, span.status.description),
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "sampled": span.context.trace_flags.sampled,
    }


def _run_both(workload: Workload, limits: SpanLimits | None = None) -> list[list[dict[str, Any]]]:
    shapes = []
    sdk = TracerProvider(resource=RESOURCE, span_limits=limits, shutdown_on_exit=False)
    ours = fast_provider(limits=limits)
    for provider in (sdk, ours):
        exporter = captured(provider)
        workload(provider.get_tracer("tests"))
        spans = exporter.get_finished_spans()
        names = {span.context.span_id: span.name for span in spans}
        shapes.append([_shape(span, names) for span in spans])
        provider.shutdown()
    return shapes


def _everything(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"a": 1}) as root:
        root.set_attribute("list", [1, 2, 3])
        root.set_attribute("bytes", b"text")
        root.set_attribute("", "empty key is rejected")
        root.set_attribute("none", None)
        root.set_attributes({"b": 2.5, "c": True})
        root.add_event("checkpoint", {"n": 1})
        root.update_name("renamed-root")
        with tracer.start_as_current_span("child", links=[Link(root.get_span_context(), {"w": 1})]):
            pass
        try:
            with tracer.start_as_current_span("fails"):
                raise KeyError("missing")
        except KeyError:
            pass
        with tracer.start_span("manual") as manual:
            manual.set_status(StatusCode.OK)
            manual.set_status(Status(StatusCode.ERROR, "ignored: OK is final"))
        try:
            with tracer.start_span("manual-fails"):
                raise RuntimeError("escaped")
        except RuntimeError:
            pass
        quiet = tracer.start_span("quiet", record_exception=False, set_status_on_exception=False)
        try:
            with quiet:
                raise ValueError("not recorded")
        except ValueError:
            pass


def test_spans_match_the_sdk_for_the_same_calls() -> None:
    """Names, kinds, parents, attributes (cleaned), events, links, statuses and exception
    events come out as the SDK makes them."""
    sdk, ours = _run_both(_everything)
    assert ours == sdk
    assert [span["name"] for span in ours][-1] == "renamed-root"


def test_span_limits_drop_the_oldest_and_count_like_the_sdk() -> None:
    """Past the span limits the oldest attribute or event goes and the drop is counted."""

    def crowded(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("crowded", attributes={"k0": 0, "k1": 1}) as span:
            for index in range(2, 6):
                span.set_attribute(f"k{index}", index)
            for index in range(5):
                span.add_event(f"e{index}", {"x": index, "y": index, "z": index})
            span.set_attribute("long", "x" * 50)

    limits = SpanLimits(
        max_span_attributes=3, max_events=2, max_event_attributes=1, max_attribute_length=8
    )
    sdk, ours = _run_both(crowded, limits)
    assert ours == sdk
    assert ours[0]["dropped_attributes"] == 4
    assert ours[0]["dropped_events"] == 3
    assert ours[0]["attributes"]["long"] == "x" * 8


def test_an_ended_span_ignores_changes(
    fast: tuple[trace.Tracer, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    """After end() a span stops recording: attributes, events, status and a second end()
    are ignored (with the SDK's warning) and the span is exported once."""
    tracer, exporter = fast
    span = tracer.start_span("once", attributes={"before": 1})
    assert span.is_recording()
    span.end()
    assert not span.is_recording()
    with caplog.at_level(logging.WARNING):
        span.set_attribute("after", 1)
        span.set_attributes({"after2": 2})
        span.add_event("late")
        span.set_status(StatusCode.ERROR)
        span.update_name("late-name")
        span.end()
    (exported,) = exporter.get_finished_spans()
    assert (exported.name, dict(exported.attributes or {})) == ("once", {"before": 1})
    assert (exported.events, exported.status.status_code) == ((), StatusCode.UNSET)
    assert "ended span" in caplog.text


def test_a_span_ended_on_another_thread_is_exported_once(
    fast: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    """Spans started on one thread and ended on others (eight at once racing to end each)
    are each exported exactly once, with the attributes set before the end."""
    tracer, exporter = fast
    spans = [tracer.start_span(f"s{index}", attributes={"i": index}) for index in range(50)]
    barrier = threading.Barrier(8)

    def end_all() -> None:
        barrier.wait()
        for span in spans:
            span.end()

    threads = [threading.Thread(target=end_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == sorted(f"s{index}" for index in range(50))


def test_an_unsampled_trace_makes_non_recording_spans() -> None:
    """A child of an unsampled remote parent, and a root the rules drop, do not record,
    are not exported, and still carry valid ids for propagation."""
    provider = fast_provider(SamplingRules(default=HeadRule(probability=0.0)))
    exporter = captured(provider)
    tracer = provider.get_tracer("tests")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    child = tracer.start_span("child", context=parent)
    root = tracer.start_span("root")
    for span in (child, root):
        assert isinstance(span, NonRecordingSpan)
        assert not span.is_recording()
        assert span.get_span_context().is_valid
        assert not span.get_span_context().trace_flags.sampled
        span.end()
    assert child.get_span_context().trace_id == 0xABC
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


def test_a_sampled_remote_parent_is_followed() -> None:
    """A child of a sampled remote parent records in the parent's trace, under it."""
    provider = fast_provider(SamplingRules(default=HeadRule(probability=0.0)))
    exporter = captured(provider)
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    provider.get_tracer("tests").start_span("child", context=parent).end()
    (span,) = exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent.span_id if span.parent else None) == (0xABC, 0xDEF)
    assert span.parent is not None
    assert span.parent.is_remote
    provider.shutdown()


def test_current_span_and_decorators(fast: tuple[trace.Tracer, InMemorySpanExporter]) -> None:
    """start_as_current_span makes the span current for the block, restores the previous
    one after, and decorates functions and coroutine functions (a span per call)."""
    tracer, exporter = fast

    @tracer.start_as_current_span("decorated")
    def work() -> str:
        return trace.get_current_span().name  # type: ignore[attr-defined,no-any-return]

    @tracer.start_as_current_span("decorated-async")
    async def work_async() -> str:
        return trace.get_current_span().name  # type: ignore[attr-defined,no-any-return]

    assert trace.get_current_span() is trace.INVALID_SPAN
    with tracer.start_as_current_span("outer") as outer:
        assert trace.get_current_span() is outer
        assert work() == "decorated"
        assert work() == "decorated"
        assert asyncio.run(work_async()) == "decorated-async"
        with trace.use_span(tracer.start_span("used"), end_on_exit=True):
            assert trace.get_current_span().name == "used"  # type: ignore[attr-defined]
        assert trace.get_current_span() is outer
    assert trace.get_current_span() is trace.INVALID_SPAN
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == ["decorated", "decorated", "decorated-async", "used", "outer"]


def test_journey_keys_are_stamped_in_process_when_asked() -> None:
    """With stamping on (the pytest plugin, stamp_span_attributes), the journey keys from
    the baggage are span attributes, the user id pseudonymised."""
    provider = fast_provider(stamp=True)
    exporter = captured(provider)
    ctx = baggage.set_baggage("session.id", "s-1", baggage.set_baggage("user.id", "alice"))
    token = context.attach(ctx)
    try:
        provider.get_tracer("tests").start_span("in-journey").end()
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"session.id": "s-1", "user.id": "pseudo-alice"}
    provider.shutdown()


def test_no_span_processor_means_no_readable_span() -> None:
    """Without an SDK span processor the provider calls no adapter at all."""
    provider = fast_provider()
    span = provider.get_tracer("tests").start_span("plain")
    assert isinstance(span, FastSpan)
    assert provider._pipeline.on_start is None
    span.end()
    captured(provider)
    assert provider._pipeline.on_start is not None
    provider.shutdown()


def test_after_shutdown_spans_do_not_record() -> None:
    """Tracing stays off after shutdown(): new spans are non-recording and not exported."""
    provider = fast_provider()
    exporter = captured(provider)
    provider.shutdown()
    span = provider.get_tracer("tests").start_span("late")
    assert not span.is_recording()
    span.end()
    assert exporter.get_finished_spans() == ()
