"""W3C Trace Context Level 2 ``traceparent``: what is accepted, what restarts the trace.

Case ids name the section of https://www.w3.org/TR/trace-context-2/ they check.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from threadline.sdk import guard
from threadline.sdk.propagation import TraceContextPropagator, build_propagator
from threadline.sdk.propagation.traceparent import Traceparent, parse_traceparent

# OpenTelemetry keeps and sets the random-trace-id flag (W3C Level 2) from 1.42 on; an
# older release in Threadline's range starts spans without it, and Threadline sends on
# what the release keeps. Received flags are kept as received by every release.
RANDOM_BIT: Final = 0x02 if hasattr(TraceFlags, "RANDOM_TRACE_ID") else 0x00
SAMPLED_AND_RANDOM: Final = f"{0x01 | RANDOM_BIT:02x}"

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"


def _expected(flags: int) -> Traceparent:
    return Traceparent(int(TRACE_ID, 16), int(PARENT_ID, 16), flags)


ACCEPTED = [
    pytest.param(VALID, 0x01, id="3.2.3-valid-sampled"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-00", 0x00, id="3.2.3-valid-not-sampled"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-02", 0x02, id="3.2.2.5.2-random-trace-id-flag-kept"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-03", 0x03, id="3.2.2.5.2-sampled-and-random"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-09", 0x01, id="3.2.2.5-other-flags-zeroed-09"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-ff", 0x03, id="3.2.2.5-other-flags-zeroed-ff"),
    pytest.param(f"cc-{TRACE_ID}-{PARENT_ID}-01", 0x01, id="3.2.4-higher-version-55-chars"),
    pytest.param(
        f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like",
        0x01,
        id="3.2.4-higher-version-unknown-fields-ignored",
    ),
    pytest.param(
        f"01-{TRACE_ID}-{PARENT_ID}-fe-anything", 0x02, id="3.2.4-higher-version-known-flags-only"
    ),
    pytest.param(f" {VALID}", 0x01, id="rfc9110-5.5-leading-space"),
    pytest.param(f"{VALID}\t", 0x01, id="rfc9110-5.5-trailing-tab"),
    pytest.param(f"\t {VALID} \t", 0x01, id="rfc9110-5.5-surrounding-ows"),
]


@pytest.mark.parametrize(("value", "flags"), ACCEPTED)
def test_valid_traceparent_is_accepted(value: str, flags: int) -> None:
    """A traceparent the spec accepts yields its trace-id, parent-id and known flags."""
    assert parse_traceparent([value]) == _expected(flags)


REJECTED = [
    pytest.param(f"ff-{TRACE_ID}-{PARENT_ID}-01", id="3.2.2.1-version-ff-invalid"),
    pytest.param(f"0-{TRACE_ID}-{PARENT_ID}-01", id="3.2.2.1-version-too-short"),
    pytest.param(f"000-{TRACE_ID}-{PARENT_ID}-01", id="3.2.2.1-version-too-long"),
    pytest.param(f".0-{TRACE_ID}-{PARENT_ID}-01", id="3.2.2.1-version-not-hex"),
    pytest.param(f"0A-{TRACE_ID}-{PARENT_ID}-01", id="3.2.2-HEXDIGLC-uppercase-version"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-01-", id="3.2.2.2-version-00-is-exactly-55-chars"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-01-extra", id="3.2.2.2-version-00-extra-field"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-01.", id="3.2.2.2-version-00-trailing-char"),
    pytest.param(f"00-{'0' * 32}-{PARENT_ID}-01", id="3.2.2.3-trace-id-all-zero"),
    pytest.param(f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", id="3.2.2.3-trace-id-uppercase"),
    pytest.param(f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", id="3.2.2.3-trace-id-too-short"),
    pytest.param(f"00-{TRACE_ID}0-{PARENT_ID}-01", id="3.2.2.3-trace-id-too-long"),
    pytest.param(f"00-.{TRACE_ID[1:]}-{PARENT_ID}-01", id="3.2.2.3-trace-id-not-hex"),
    pytest.param(f"00-{'٠' * 32}-{PARENT_ID}-01", id="3.2.2.3-trace-id-non-ascii-digits"),
    pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="3.2.2.4-parent-id-all-zero"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID.upper()}-01", id="3.2.2.4-parent-id-uppercase"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01", id="3.2.2.4-parent-id-too-short"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}0-01", id="3.2.2.4-parent-id-too-long"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-1", id="3.2.2.5-flags-too-short"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-001", id="3.2.2.5-flags-too-long"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-0g", id="3.2.2.5-flags-not-hex"),
    pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-0A", id="3.2.2.5-flags-uppercase"),
    pytest.param(f"00- {TRACE_ID}-{PARENT_ID}-01", id="3.2.2-whitespace-inside-value"),
    pytest.param(f"00_{TRACE_ID}_{PARENT_ID}_01", id="3.2.2-wrong-delimiter"),
    pytest.param(f"cc-{TRACE_ID}-{PARENT_ID}-1", id="3.2.4-higher-version-shorter-than-55"),
    pytest.param(
        f"cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like",
        id="3.2.4-higher-version-no-dash-after-flags",
    ),
    pytest.param(f"cc-{TRACE_ID}-{'0' * 16}-01-x", id="3.2.4-higher-version-zero-parent-id"),
    pytest.param(f"{VALID},{VALID}", id="rfc9110-5.3-two-lines-joined-with-comma"),
    pytest.param(f"{VALID}, 00-{'1' * 32}-{PARENT_ID}-01", id="rfc9110-5.3-two-lines-joined"),
    pytest.param("", id="3.2.2-empty"),
    pytest.param("\t ", id="3.2.2-whitespace-only"),
]


@pytest.mark.parametrize("value", REJECTED)
def test_invalid_traceparent_is_rejected(value: str) -> None:
    """A traceparent the spec forbids is ignored, so the service starts a new trace."""
    assert parse_traceparent([value]) is None


def test_two_traceparent_field_lines_are_invalid() -> None:
    """Two ``traceparent`` field lines are invalid, even when the first one is valid.

    §3.2.2 defines ``traceparent`` as one ``version "-" version-format`` value, not a
    list, so RFC 9110 §5.3 forbids repeating it: the lines combine into ``a, b``, which
    matches no version-format. §3.3: "If the vendor failed to parse traceparent, it MUST
    NOT attempt to parse tracestate". The W3C conformance suite
    (``test_traceparent_duplicated``) expects a newly generated trace-id.
    """
    first = f"00-{'1' * 31}1-{PARENT_ID}-01"
    second = f"00-{'1' * 31}2-{PARENT_ID}-01"
    assert parse_traceparent([first, second]) is None
    assert parse_traceparent([VALID, VALID]) is None
    carrier = {"traceparent": [first, second], "tracestate": ["congo=t61rcWkgMzE"]}
    context = TraceContextPropagator().extract(carrier, getter=ListGetter())
    assert not trace.get_current_span(context).get_span_context().is_valid


class ListGetter(Getter[dict[str, list[str]]]):
    """A carrier whose fields each hold several lines, as HTTP/ASGI headers may."""

    def get(self, carrier: dict[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key)

    def keys(self, carrier: dict[str, list[str]]) -> list[str]:
        return list(carrier)


def test_invalid_traceparent_leaves_no_remote_parent_and_ignores_tracestate() -> None:
    """An invalid traceparent gives no remote parent, and its tracestate is not read (§3.3)."""
    carrier = {"traceparent": f"ff-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "congo=t61rcWkgMzE"}
    context = TraceContextPropagator().extract(carrier)
    assert trace.get_current_span(context).get_span_context() == trace.INVALID_SPAN_CONTEXT


def test_missing_traceparent_leaves_the_given_context_as_it_was() -> None:
    """Without a traceparent, extract hands back the context it was given."""
    given = otel_context.set_value("marker", 1, Context())
    assert TraceContextPropagator().extract({"tracestate": "a=1"}, given) is given


def test_extracted_parent_is_remote_with_flags_and_tracestate() -> None:
    """The extracted parent is remote and carries the received flags and tracestate."""
    carrier = {
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-03",
        "tracestate": "rojo=00f067aa0ba902b7",
    }
    span_context = trace.get_current_span(TraceContextPropagator().extract(carrier))
    parent = span_context.get_span_context()
    assert (parent.trace_id, parent.span_id) == (int(TRACE_ID, 16), int(PARENT_ID, 16))
    assert parent.is_remote
    assert parent.trace_flags == 0x03
    assert parent.trace_flags.sampled
    assert parent.trace_flags & 0x02  # the random-trace-id bit, as received
    assert dict(parent.trace_state) == {"rojo": "00f067aa0ba902b7"}


INJECTED = [
    pytest.param(0x01, "01", id="3.2.2.5.1-sampled"),
    pytest.param(0x03, "03", id="3.2.2.5.2-random-trace-id-kept"),
    pytest.param(0x00, "00", id="3.2.2.5-none"),
    pytest.param(0xFF, "03", id="3.2.2.5-other-flags-set-to-zero"),
]


@pytest.mark.parametrize(("flags", "written"), INJECTED)
def test_inject_writes_version_00_with_known_flags_only(flags: int, written: str) -> None:
    """Inject writes a lowercase version-00 traceparent with reserved flag bits zero."""
    span_context = SpanContext(int(TRACE_ID, 16), int(PARENT_ID, 16), False, TraceFlags(flags))
    carrier: dict[str, str] = {}
    TraceContextPropagator().inject(
        carrier, trace.set_span_in_context(NonRecordingSpan(span_context))
    )
    assert carrier == {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-{written}"}


def test_inject_writes_nothing_without_a_valid_span() -> None:
    """Outside any span nothing is written, so no invalid traceparent ever leaves."""
    carrier: dict[str, str] = {}
    build_propagator().inject(carrier, Context())
    assert carrier == {}


def test_higher_version_is_sent_on_as_version_00() -> None:
    """A higher-version parent is continued and re-sent in version 00 (§3.4 'Downgrade')."""
    propagator = TraceContextPropagator()
    context = propagator.extract({"traceparent": f"cc-{TRACE_ID}-{PARENT_ID}-01-future"})
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier["traceparent"] == VALID


@pytest.fixture
def tracer_and_spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("propagation-test"), exporter
    provider.shutdown()


ROUND_TRIP_FLAGS = [
    pytest.param("01", "01", id="3.2.2.5.2-random-unset-stays-unset"),
    pytest.param("03", SAMPLED_AND_RANDOM, id="3.2.2.5.2-random-set-stays-set"),
    pytest.param("0b", SAMPLED_AND_RANDOM, id="3.2.2.5-sdk-drops-reserved-bits"),
]


@pytest.mark.parametrize(("incoming", "outgoing"), ROUND_TRIP_FLAGS)
def test_child_span_continues_the_remote_trace(
    tracer_and_spans: tuple[trace.Tracer, InMemorySpanExporter], incoming: str, outgoing: str
) -> None:
    """A span started under an extracted context joins the caller's trace as its child,
    and the next hop gets the same trace-id, the child as parent, and the random flag."""
    tracer, exporter = tracer_and_spans
    propagator = build_propagator()
    received = {
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-{incoming}",
        "tracestate": "1vendor=a,tenant@system-with-long-name=b",
    }
    token = otel_context.attach(propagator.extract(received))
    try:
        with tracer.start_as_current_span("handle") as span:
            sent: dict[str, str] = {}
            propagator.inject(sent)
    finally:
        otel_context.detach(token)
    child = span.get_span_context()
    assert sent["traceparent"] == f"00-{TRACE_ID}-{child.span_id:016x}-{outgoing}"
    assert sent["tracestate"] == "1vendor=a,tenant@system-with-long-name=b"
    (finished,) = exporter.get_finished_spans()
    assert finished.context is not None
    assert finished.parent is not None
    assert finished.context.trace_id == int(TRACE_ID, 16)
    assert finished.parent.span_id == int(PARENT_ID, 16)
    assert finished.parent.is_remote


def test_unsampled_parent_is_continued_unsampled(
    tracer_and_spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    """A caller that did not sample gets an unsampled child with the same trace-id (§3.2.2.5.1)."""
    tracer, exporter = tracer_and_spans
    propagator = build_propagator()
    token = otel_context.attach(
        propagator.extract({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    )
    try:
        with tracer.start_as_current_span("handle"):
            sent: dict[str, str] = {}
            propagator.inject(sent)
    finally:
        otel_context.detach(token)
    assert sent["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert sent["traceparent"].endswith("-00")
    assert exporter.get_finished_spans() == ()


def test_new_trace_after_invalid_traceparent(
    tracer_and_spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    """After an invalid traceparent the span starts a new trace and no tracestate is sent."""
    tracer, _ = tracer_and_spans
    propagator = build_propagator()
    received = {"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01", "tracestate": "congo=x"}
    token = otel_context.attach(propagator.extract(received))
    try:
        with tracer.start_as_current_span("handle") as span:
            sent: dict[str, str] = {}
            propagator.inject(sent)
    finally:
        otel_context.detach(token)
    assert span.get_span_context().trace_id != 0
    assert "tracestate" not in sent
    # A new root: sampled, and a random trace-id where the release says so.
    assert sent["traceparent"].endswith(f"-{SAMPLED_AND_RANDOM}")


def test_extract_never_raises_on_arbitrary_header_values() -> None:
    """Whatever bytes arrive in the propagation headers, extract returns a context."""
    generator = random.Random(20240328)
    alphabet = "0123456789abcdefABCDEF-=,; \t@%*/_.\x00\x7f\u00e9\u2713"
    propagator = build_propagator()
    for _ in range(2000):
        carrier = {
            name: "".join(generator.choice(alphabet) for _ in range(generator.randrange(80)))
            for name in ("traceparent", "tracestate", "baggage", "b3", "x-b3-traceid")
        }
        assert isinstance(propagator.extract(carrier), Context)


class FailingGetter(Getter[dict[str, str]]):
    """A carrier adapter with a bug: every read raises."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        raise RuntimeError("broken carrier")

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return []


def test_failure_while_extracting_leaves_the_request_untraced_not_broken() -> None:
    """A failing carrier adapter costs the context, never the request: extract returns the
    context it was given and logs through the guard."""
    given = otel_context.set_value("marker", 1, Context())
    guard.raise_internal_errors(False)
    try:
        assert build_propagator().extract({}, given, FailingGetter()) is given
    finally:
        guard.raise_internal_errors(True)
