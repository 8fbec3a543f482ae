"""Redaction in the SDK: spans lose secrets and personal data before any exporter sees them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer

from support.redaction_cases import CASES, Case, case_spans
from threadline.redaction import REDACTED_FIELDS, RedactionRules, Redactor
from threadline.sdk.export import compact
from threadline.sdk.export.compact import capture
from threadline.sdk.export.encoder import SpanEncoder
from threadline.sdk.redaction_processor import (
    RedactingSpanExporter,
    RedactingSpanProcessor,
    redact_compact,
    redact_span,
)

from .collector import CollectedSpan, Collector
from .conftest import SCENARIO_TIMEOUT_S, clean_environ

REDACTOR = Redactor(RedactionRules(), "sdk-test-key")

# Run in a fresh process: configure() installs the global provider once per process.
CONFIGURED_SERVICE = """
import threadline
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

threadline.configure(service_name="redaction-check")
# What the provider runs on the thread that ends a span (the fast pipeline lists them;
# the SDK's provider keeps them private: read only to show that no redacting wrapper
# sits there, the export worker redacts).
provider = trace.get_tracer_provider()
processors = getattr(provider, "span_processors", None)
if processors is None:
    processors = provider._active_span_processor._span_processors
print("processors:", ",".join(type(p).__name__ for p in processors))
tracer = trace.get_tracer("check")
with threadline.journey(session_id="dave@example.com"), tracer.start_as_current_span(
    "POST /signup"
) as span:
    span.set_attribute("url.full", "https://shop.example/signup?token=t0k3n&plan=pro")
    span.set_attribute("http.request.header.authorization", ("Bearer abc.def.123",))
    span.set_attribute("customer.note", "call me at bob@example.com")
    span.set_attribute("http.route", "/signup")
    try:
        raise ValueError("card 4111 1111 1111 1111 was declined")
    except ValueError as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
threadline.shutdown()
"""


# OpenTelemetry cuts attribute values to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT as they are
# set, before Threadline sees them.
CUT_SERVICE = """
import threadline
from opentelemetry import trace

threadline.configure(service_name="redaction-cut")
with trace.get_tracer("check").start_as_current_span("cut") as span:
    span.set_attribute("log.mail", "x" * 30 + " zelda.quux@example.com")
    span.set_attribute("log.card", "x" * 30 + " 4111 1111 1111 1111")
    span.set_attribute("log.short", "no secret here")
threadline.shutdown()
"""


@pytest.fixture
def traced() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter), REDACTOR))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _failing_checkout(tracer: Tracer) -> None:
    with tracer.start_as_current_span("charge") as span:
        span.set_attribute("payment.card", "4111111111111111")
        span.set_attribute("db.password", "hunter2")
        span.set_attribute("http.route", "/pay")
        span.add_event("retry", {"to": "alice@example.com", "attempt": 2})
        try:
            raise RuntimeError("no account for alice@example.com")
        except RuntimeError as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, "declined for alice@example.com"))


def test_processor_hands_on_redacted_spans(traced: tuple[Tracer, InMemorySpanExporter]) -> None:
    """Attributes, event attributes, exception messages and the status lose personal data."""
    tracer, exporter = traced
    _failing_checkout(tracer)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["payment.card"] == "****1111"
    assert attributes["db.password"] == "[REDACTED]"
    assert attributes["http.route"] == "/pay"
    retry, exception = span.events
    assert dict(retry.attributes or {}) == {"to": "[REDACTED:email]", "attempt": 2}
    exception_attributes = dict(exception.attributes or {})
    assert exception_attributes["exception.message"] == "no account for [REDACTED:email]"
    assert "alice@example.com" not in str(exception_attributes["exception.stacktrace"])
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "declined for [REDACTED:email]"
    assert attributes[REDACTED_FIELDS] == (
        "db.password",
        "events.exception.exception.message",
        "events.exception.exception.stacktrace",
        "events.retry.to",
        "payment.card",
        "status.message",
    )


def test_clean_spans_are_passed_on_as_they_are(
    traced: tuple[Tracer, InMemorySpanExporter],
) -> None:
    """A span no rule matches is not copied and carries no redaction record."""
    tracer, exporter = traced
    with tracer.start_as_current_span("GET /items") as span:
        span.set_attribute("http.route", "/items")
        span.set_attribute("gen_ai.usage.input_tokens", 120)
    (exported,) = exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == {
        "http.route": "/items",
        "gen_ai.usage.input_tokens": 120,
    }
    assert redact_span(exported, REDACTOR) is exported


def test_exporter_wrapper_redacts_for_any_exporter() -> None:
    """Wrapped around a SpanExporter, redaction runs where the exporter runs, ids unchanged."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(memory, REDACTOR)))
    with provider.get_tracer("test").start_as_current_span("login") as live:
        live.set_attribute("user.id", "carol@example.com")
        live.set_attribute("session.token", "abc")
        context = live.get_span_context()
    provider.shutdown()
    (span,) = memory.get_finished_spans()
    assert isinstance(span, ReadableSpan)
    assert span.context == context
    attributes = dict(span.attributes or {})
    assert str(attributes["user.id"]).startswith("h_")
    assert attributes["session.token"] == "[REDACTED]"


def _run_configured_service(collector: Collector, **env: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", CONFIGURED_SERVICE],
        env=clean_environ({"THREADLINE_ENDPOINT": collector.endpoint, **env}),
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _the_signup_span(collector: Collector) -> CollectedSpan:
    # Other spans may arrive too (the SDK's own stats span at shutdown).
    spans = collector.wait_for(lambda spans: any(s.name == "POST /signup" for s in spans))
    (span,) = [s for s in spans if s.name == "POST /signup"]
    return span


def test_configure_redacts_by_default(collector: Collector) -> None:
    """With no redaction settings, configure() exports spans already redacted over OTLP,
    journey keys from baggage included, redacted by the export worker alone."""
    output = _run_configured_service(collector)
    assert "processors: ExportProcessor\n" in output
    span = _the_signup_span(collector)
    assert str(span.attributes["session.id"]).startswith("h_")
    assert span.attributes["url.full"] == "https://shop.example/signup?token=REDACTED&plan=pro"
    assert span.attributes["http.request.header.authorization"] == "[REDACTED]"
    assert span.attributes["customer.note"] == "call me at [REDACTED:email]"
    assert span.attributes["http.route"] == "/signup"
    assert span.attributes[REDACTED_FIELDS] == [
        "customer.note",
        "events.exception.exception.message",
        "events.exception.exception.stacktrace",
        "http.request.header.authorization",
        "session.id",
        "status.message",
        "url.full",
    ]


def test_configure_without_redaction_exports_what_was_recorded(collector: Collector) -> None:
    """THREADLINE_REDACTION=false turns the rules off: values arrive as the code set them."""
    _run_configured_service(collector, THREADLINE_REDACTION="false")
    span = _the_signup_span(collector)
    assert span.attributes["customer.note"] == "call me at bob@example.com"
    assert span.attributes["session.id"] == "dave@example.com"
    assert REDACTED_FIELDS not in span.attributes


def test_compact_export_records_are_redacted_with_their_journey() -> None:
    """The export pipeline's compact records lose personal data, journey keys included."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _failing_checkout(provider.get_tracer("test"))
    provider.shutdown()
    (span,) = exporter.get_finished_spans()
    journey = (("session.id", "dave@example.com"), ("journey.id", "j-1"))
    record = redact_compact(capture(span, journey), REDACTOR)
    attributes = dict(record[compact.ATTRIBUTES])
    assert attributes["payment.card"] == "****1111"
    assert record[compact.STATUS].description == "declined for [REDACTED:email]"
    (session, journey_id) = record[compact.JOURNEY]
    assert session[0] == "session.id"
    assert session[1].startswith("h_")
    assert journey_id == ("journey.id", "j-1")
    assert "session.id" in attributes[REDACTED_FIELDS]
    clean = capture(exported_clean_span(), None)
    assert redact_compact(clean, REDACTOR) is clean


def exported_clean_span() -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("test").start_span("GET /", attributes={"http.route": "/"}).end()
    provider.shutdown()
    (span,) = exporter.get_finished_spans()
    return span


def _text_of_value(value: AnyValue) -> list[str]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return [value.string_value]
    if kind == "bytes_value":  # the text the bytes hold, so a card sent as bytes is seen
        return [value.bytes_value.decode("utf-8", "replace")]
    if kind == "int_value":
        return [str(value.int_value)]
    if kind == "double_value":
        number = value.double_value
        return [repr(number), str(int(number))] if number.is_integer() else [repr(number)]
    if kind == "array_value":
        return [text for item in value.array_value.values for text in _text_of_value(item)]
    if kind == "kvlist_value":
        return _text_of_attributes(value.kvlist_value.values)
    return []


def _text_of_attributes(attributes: list[KeyValue]) -> list[str]:
    return [text for kv in attributes for text in (kv.key, *_text_of_value(kv.value))]


def _sent(request: ExportTraceServiceRequest) -> tuple[str, dict[str, list[str]]]:
    """Every text the request carries, and its span's threadline.redacted list."""
    texts: list[str] = []
    listed: dict[str, list[str]] = {}
    for resource_spans in request.resource_spans:
        texts += _text_of_attributes(list(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            texts.append(scope_spans.scope.name)
            for span in scope_spans.spans:
                texts += [span.name, span.status.message]
                texts += _text_of_attributes(list(span.attributes))
                for event in span.events:
                    texts += [event.name, *_text_of_attributes(list(event.attributes))]
                for link in span.links:
                    texts += _text_of_attributes(list(link.attributes))
                for kv in span.attributes:
                    if kv.key == REDACTED_FIELDS:
                        listed["span"] = _text_of_value(kv.value)
            for kv in resource_spans.resource.attributes:
                if kv.key == REDACTED_FIELDS:
                    listed["resource"] = _text_of_value(kv.value)
    return "\n".join(texts), listed


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_redaction_case_in_the_sdk(case: Case) -> None:
    """Each case of the shared table leaves the SDK's export step (compact record,
    redaction, OTLP encoding) without its secrets, keeping the rest."""
    records = [redact_compact(capture(span, None), REDACTOR) for span in case_spans(case)]
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode_request(records))
    sent, listed = _sent(request)
    assert case.id in sent  # the span was encoded
    for secret in case.secrets:
        assert secret not in sent
    for kept in case.kept:
        assert kept in sent
    assert set(case.listed) <= set(listed.get("span", []))
    if case.clean:
        assert listed == {}


def test_values_cut_by_span_limits_do_not_end_in_half_a_secret(collector: Collector) -> None:
    """With OpenTelemetry's attribute length limit set, a value cut in the middle of an
    address or a card number is exported with that fragment masked."""
    completed = subprocess.run(
        [sys.executable, "-c", CUT_SERVICE],
        env=clean_environ(
            {"THREADLINE_ENDPOINT": collector.endpoint, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40"}
        ),
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    spans = collector.wait_for(lambda spans: any(s.name == "cut" for s in spans))
    (span,) = [s for s in spans if s.name == "cut"]
    assert span.attributes["log.mail"] == "x" * 30 + " [REDACTED:cut]"
    assert span.attributes["log.card"] == "x" * 30 + " [REDACTED:cut]"
    assert span.attributes["log.short"] == "no secret here"


def test_resource_and_scope_are_redacted_once_and_shared() -> None:
    """Spans of one tracer share one redacted resource and scope: the same objects, so
    the encoder's per-resource cache still holds, and each span lists scope.name."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "deploy.owner": "ops@example.com"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("jobs for ann@example.com")
    for name in ("first", "second"):
        tracer.start_span(name).end()
    provider.shutdown()
    first, second = (redact_span(span, REDACTOR) for span in exporter.get_finished_spans())
    assert first.resource is second.resource
    assert first.instrumentation_scope is second.instrumentation_scope
    assert first.resource.attributes["deploy.owner"] == "[REDACTED:email]"
    assert first.resource.attributes[REDACTED_FIELDS] == ("deploy.owner",)
    assert first.instrumentation_scope is not None
    assert first.instrumentation_scope.name == "jobs for [REDACTED:email]"
    assert dict(first.attributes or {})[REDACTED_FIELDS] == ("scope.name",)
