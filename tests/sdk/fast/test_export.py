"""The fast pipeline exporting for real: OTLP/HTTP to the loopback collector.

Spans go from ``FastSpan.end()`` straight into the export processor's queue as compact
records; spans never ended are dropped and counted at shutdown.
"""

from __future__ import annotations

import gc

from opentelemetry import baggage, context
from opentelemetry.sdk.trace.sampling import ParentBased

from sdk.collector import Collector
from threadline.sdk.export import pipeline as export_pipeline
from threadline.sdk.fast import FastTracerProvider
from threadline.sdk.sampling.rule_sampler import RuleSampler
from threadline.settings import SdkSettings

from .test_spans import RESOURCE


def _exporting(collector: Collector) -> FastTracerProvider:
    settings = SdkSettings(
        service_name="fast-tests",
        endpoint=collector.endpoint,
        export_delay_ms=50,
        stats_interval_s=0,
        user_id_key="test-key",
    )
    rule_sampler = RuleSampler("fast-tests")
    provider = FastTracerProvider(
        RESOURCE,
        ParentBased(rule_sampler),
        rule_sampler,
        lambda u: f"p-{u}",
        shutdown_on_exit=False,
    )
    provider.set_export(
        export_pipeline.export_processor(
            settings, RESOURCE, None, export_pipeline.export_redactor(settings)
        )
    )
    return provider


def test_spans_are_exported_with_journey_keys_and_redaction(collector: Collector) -> None:
    """A parent and child arrive in one trace, with the journey keys from the baggage
    (user id pseudonymised) and the default redaction applied on the export thread."""
    provider = _exporting(collector)
    tracer = provider.get_tracer("tests")
    token = context.attach(
        baggage.set_baggage("session.id", "s-9", baggage.set_baggage("user.id", "bob"))
    )
    try:
        parent = tracer.start_as_current_span("parent", attributes={"db.password": "hunter2"})
        with parent, tracer.start_as_current_span("child"):
            pass
    finally:
        context.detach(token)
    spans = collector.wait_for(lambda spans: len(spans) >= 2)
    by_name = {span.name: span for span in spans}
    assert by_name["child"].parent_span_id == by_name["parent"].span_id
    assert by_name["child"].trace_id == by_name["parent"].trace_id
    assert by_name["parent"].attributes["session.id"] == "s-9"
    assert by_name["parent"].attributes["user.id"] == "p-bob"
    assert by_name["parent"].attributes["db.password"] != "hunter2"
    provider.shutdown()


def test_spans_never_ended_are_dropped_and_counted_at_shutdown(collector: Collector) -> None:
    """Spans a host forgets to end hold nothing in the pipeline; shutdown counts them as
    never_ended drops, and the ended ones are exported."""
    provider = _exporting(collector)
    tracer = provider.get_tracer("tests")
    for index in range(3):
        tracer.start_span(f"forgotten-{index}")  # never ended, and no reference kept
    gc.collect()
    tracer.start_span("ended").end()
    assert provider._pipeline.export is not None
    processor = provider._pipeline.export
    provider.shutdown()
    stats = processor.stats()
    assert stats.dropped["never_ended"] == 3
    assert [span.name for span in collector.spans] == ["ended"]
