"""The export processor with a local TracerProvider and the loopback collector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from sdk.collector import CollectedSpan, Collector
from threadline.redaction import REDACTED_FIELDS, RedactionRules, Redactor
from threadline.sdk import guard
from threadline.sdk.export.pipeline import export_processors
from threadline.sdk.export.processor import STATS_SPAN_NAME, ExportProcessor
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.transport import TransportConfig
from threadline.settings import SdkSettings


class _SeenAttributes(SpanProcessor):
    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.seen.append(dict(span.attributes or {}))


def _processor(endpoint: str, **overrides: object) -> ExportProcessor:
    options: dict[str, object] = {
        "queue_size": 100,
        "batch_size": 10,
        "delay_s": 60.0,  # only flushes deliver, so tests control when
        "retry": RetryPolicy(deadline_s=1.0, initial_backoff_s=0.05),
        "shutdown_timeout_s": 2.0,
        "resource": Resource.create({"service.name": "proc"}),
        "pseudonymize_user_id": lambda user: f"p-{user}",
        "stats_interval_s": 0.0,
        **overrides,
    }
    return ExportProcessor(TransportConfig(endpoint, timeout_s=5), **options)  # type: ignore[arg-type]


@pytest.fixture
def journey_context() -> Iterator[None]:
    ctx = baggage.set_baggage("session.id", "s-9", baggage.set_baggage("user.id", "ada"))
    token = context.attach(ctx)
    yield
    context.detach(token)


@pytest.mark.usefixtures("journey_context")
def test_journey_keys_are_exported_but_not_set_on_the_live_span(collector: Collector) -> None:
    """By default the journey keys reach the endpoint without costing a set_attribute."""
    provider = TracerProvider()
    seen = _SeenAttributes()
    processor = _processor(collector.endpoint)
    provider.add_span_processor(processor)
    provider.add_span_processor(seen)
    with provider.get_tracer("t").start_as_current_span("in-journey"):
        pass
    assert processor.force_flush(5_000)
    (span,) = collector.wait_for(lambda spans: len(spans) == 1)
    assert span.attributes["session.id"] == "s-9"
    assert span.attributes["user.id"] == "p-ada"  # pseudonymised
    assert seen.seen == [{}]
    processor.shutdown()


@pytest.mark.usefixtures("journey_context")
def test_stamp_span_attributes_sets_them_in_process_too(collector: Collector) -> None:
    """With stamp_span_attributes the host's other processors see the journey keys."""
    settings = SdkSettings(endpoint=collector.endpoint, stamp_span_attributes=True)
    provider = TracerProvider()
    processors = export_processors(settings, provider, lambda user: f"p-{user}")
    for processor in processors:
        provider.add_span_processor(processor)
    seen = _SeenAttributes()
    provider.add_span_processor(seen)
    with provider.get_tracer("t").start_as_current_span("stamped"):
        pass
    provider.force_flush(5_000)
    (span,) = collector.wait_for(lambda spans: len(spans) == 1)
    assert span.attributes["session.id"] == "s-9"
    assert seen.seen == [{"session.id": "s-9", "user.id": "p-ada"}]
    provider.shutdown()


def test_worker_redacts_attributes_and_journey_keys_before_sending(collector: Collector) -> None:
    """An e-mail session id from baggage and an e-mail in an attribute reach the endpoint
    redacted, while the span the service's own processors see keeps what the code set."""
    provider = TracerProvider()
    processor = _processor(collector.endpoint, redactor=Redactor(RedactionRules(), "test-key"))
    seen = _SeenAttributes()
    provider.add_span_processor(processor)
    provider.add_span_processor(seen)
    ctx = baggage.set_baggage("session.id", "dave@example.com")
    with provider.get_tracer("t").start_as_current_span("signup", context=ctx) as live:
        live.set_attribute("customer.note", "write to dave@example.com")
    assert processor.force_flush(5_000)
    (span,) = collector.wait_for(lambda spans: len(spans) == 1)
    session_id = str(span.attributes["session.id"])
    assert session_id.startswith("h_")
    assert "dave" not in session_id
    assert span.attributes["customer.note"] == "write to [REDACTED:email]"
    assert span.attributes[REDACTED_FIELDS] == ["customer.note", "session.id"]
    assert seen.seen == [{"customer.note": "write to dave@example.com"}]
    processor.shutdown()


def test_a_span_that_cannot_be_redacted_is_dropped_and_counted(collector: Collector) -> None:
    """A span redaction fails on is never sent in clear: it is dropped as redaction_error."""
    from opentelemetry.trace import SpanContext, TraceFlags

    processor = _processor(collector.endpoint, redactor=Redactor(RedactionRules(), "test-key"))
    sampled = TraceFlags(TraceFlags.SAMPLED)
    broken = ReadableSpan(  # a key that is not a string: the rules cannot be applied
        name="broken",
        context=SpanContext(0xA1, 0xB1, is_remote=False, trace_flags=sampled),
        attributes={7: "dave@example.com"},  # type: ignore[dict-item]
        start_time=1,
        end_time=2,
    )
    fine = ReadableSpan(
        name="fine",
        context=SpanContext(0xA2, 0xB2, is_remote=False, trace_flags=sampled),
        attributes={"http.route": "/"},
        start_time=1,
        end_time=2,
    )
    processor.on_end(broken)
    processor.on_end(fine)
    guard.raise_internal_errors(False)  # logged as it is in a service, not raised
    try:
        assert processor.force_flush(5_000)
    finally:
        guard.raise_internal_errors(True)
    collector.wait_for(lambda spans: len(spans) == 1)
    assert [span.name for span in collector.spans] == ["fine"]
    stats = processor.stats()
    assert (stats.exported, stats.dropped["redaction_error"]) == (1, 1)
    processor.shutdown()


def test_shutdown_flushes_and_counts(collector: Collector) -> None:
    """Shutdown delivers what is queued; stats count it; spans after shutdown are counted."""
    provider = TracerProvider()
    processor = _processor(collector.endpoint)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for index in range(25):
        with tracer.start_as_current_span(f"s{index}"):
            pass
    processor.shutdown()
    assert len(collector.spans) == 25
    stats = processor.stats()
    assert (stats.exported, stats.dropped_total, stats.queued) == (25, 0, 0)
    with tracer.start_as_current_span("late"):
        pass
    assert processor.stats().dropped["shutdown"] == 1


def _first_stats_span(
    collector: Collector, **overrides: object
) -> tuple[ExportProcessor, CollectedSpan]:
    """A processor reporting every 50 ms after exporting one span, and the first
    stats span the collector kept (the caller shuts the processor down)."""
    provider = TracerProvider()
    processor = _processor(collector.endpoint, stats_interval_s=0.05, delay_s=0.02, **overrides)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("counted"):
        pass
    spans = collector.wait_for(lambda got: any(s.name == STATS_SPAN_NAME for s in got))
    return processor, next(s for s in spans if s.name == STATS_SPAN_NAME)


def test_stats_span_reports_the_counters(collector: Collector) -> None:
    """The worker sends a threadline.sdk.stats span whose attributes are the counters."""
    processor, stats_span = _first_stats_span(collector)
    assert stats_span.attributes["threadline.sdk.spans.exported"] == 1
    assert stats_span.attributes["threadline.sdk.spans.dropped.queue_full"] == 0
    assert processor.stats().exported == 1  # the stats span itself is not counted
    processor.shutdown()


def test_a_stats_report_the_endpoint_refused_is_sent_again(collector: Collector) -> None:
    """The endpoint fails the first stats reports past their retry deadline; the counters
    did not move since, yet a later report carries them (a lost report is not final)."""
    collector.refuse(STATS_SPAN_NAME, times=6)
    processor, stats_span = _first_stats_span(
        collector, retry=RetryPolicy(deadline_s=0.1, initial_backoff_s=0.02)
    )
    assert stats_span.attributes["threadline.sdk.spans.exported"] == 1
    assert processor.stats().failed_requests >= 6  # the refused attempts happened
    processor.shutdown()


def test_unreachable_endpoint_drops_after_the_deadline_and_shutdown_is_bounded() -> None:
    """With nothing listening, a batch is retried until its deadline, then counted as dropped."""
    from threadline.demo.processes import free_port

    processor = _processor(f"http://127.0.0.1:{free_port()}")
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("lost"):
        pass
    processor.force_flush(5_000)
    stats = processor.stats()
    assert stats.dropped["retry_deadline"] == 1
    assert stats.retried >= 1
    processor.shutdown()


def test_shutdown_with_the_endpoint_down_stops_at_its_own_deadline() -> None:
    """Shutdown gives up at shutdown_timeout_s, not the longer retry deadline, and counts
    what it could not send."""
    from threadline.demo.processes import free_port

    processor = _processor(
        f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(deadline_s=600.0, initial_backoff_s=0.05),
        shutdown_timeout_s=0.5,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for index in range(30):
        with provider.get_tracer("t").start_as_current_span(f"pending-{index}"):
            pass
    processor.shutdown()
    assert not processor._worker.is_alive()
    stats = processor.stats()
    assert stats.exported == 0
    assert stats.dropped_total == 30
