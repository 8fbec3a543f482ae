"""The server's decoder (``SpanDecoder``) gives exactly what ``decode`` gives.

``SpanDecoder`` reads span attributes through the encoded ``KeyValue``s it remembers;
``decode`` is the decoder it replaced, kept as the reference. For every payload, valid
or not, with and without redaction, both give the same table or the same error.
"""

from __future__ import annotations

import random
from typing import Final

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from threadline.server.errors import ThreadlineError
from threadline.server.ingest.decode import PayloadFormat, decode
from threadline.server.ingest.limits import DEFAULT_LIMITS, IngestLimits
from threadline.server.ingest.redact import IngestRedactor, ingest_redactor
from threadline.server.ingest.span_decoder import MAX_REMEMBERED, SpanDecoder
from threadline.settings import ServerSettings

from .otlp_payloads import one_span_request, string_value
from .test_fuzz import mutate_bytes, seeds

SEED: Final = 20_261_202
MUTATED_PAYLOADS: Final = 3_000
SMALL_LIMITS: Final = IngestLimits(max_attributes_per_span=4, max_attribute_value_length=40)
REDACTOR: Final = ingest_redactor(ServerSettings())

Outcome = tuple[str, object]


def outcome_of_reference(
    body: bytes, limits: IngestLimits, redactor: IngestRedactor | None
) -> Outcome:
    try:
        return "batch", decode(body, PayloadFormat.PROTOBUF, limits, redactor).table
    except ThreadlineError as exc:
        return "refused", (type(exc), exc.status_code, exc.message)


def outcome_of(decoder: SpanDecoder, body: bytes) -> Outcome:
    try:
        return "batch", decoder.decode(body, PayloadFormat.PROTOBUF).table
    except ThreadlineError as exc:
        return "refused", (type(exc), exc.status_code, exc.message)


def assert_same(decoder: SpanDecoder, body: bytes, limits: IngestLimits, redactor: object) -> None:
    expected = outcome_of_reference(body, limits, redactor)  # type: ignore[arg-type]
    got = outcome_of(decoder, body)
    assert got[0] == expected[0], (got, expected)
    if isinstance(expected[1], pa.Table):
        assert isinstance(got[1], pa.Table)
        assert got[1].equals(expected[1]), (got[1].to_pylist(), expected[1].to_pylist())
    else:
        assert got[1] == expected[1]


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def varied_request() -> ExportTraceServiceRequest:
    """Spans that take every path: plain, repeated keys, redacted values, limits, nesting."""
    request = one_span_request()
    resource = request.resource_spans[0]
    resource.resource.attributes.append(string_value("session.id", "resource-session"))
    scope = resource.scope_spans[0]
    template = scope.spans[0]
    attribute_sets: list[list[KeyValue]] = [
        [string_value("http.route", "/pay"), string_value("user.id", "u-1")],
        [string_value("http.route", "/pay"), string_value("http.route", "/refund")],
        [string_value("customer.email", "zoe@example.com"), string_value("http.route", "/pay")],
        [string_value("session.id", ""), string_value("journey.id", "j-9")],
        [string_value(f"k{n}", "v") for n in range(6)],
        [string_value("sql", "select * from orders where id = 1 " * 3)],
        [
            kv("payload", AnyValue(bytes_value=b"\x00\x01card 4111 1111 1111 1111")),
            kv("ratio", AnyValue(double_value=float("nan"))),
            kv("count", AnyValue(int_value=4_111_111_111_111_111)),
            kv("ok", AnyValue(bool_value=True)),
            kv("empty", AnyValue()),
        ],
        [
            kv(
                "nested",
                AnyValue(
                    kvlist_value=KeyValueList(
                        values=[
                            kv(
                                "list",
                                AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])),
                            )
                        ]
                    )
                ),
            ),
            kv("session.id", AnyValue(int_value=7)),
        ],
        [string_value("token", "secret-value"), string_value("http.route", "/pay")],
        [],
    ]
    for n, attributes in enumerate(attribute_sets):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 2).to_bytes(8, "big")
        span.attributes.extend(attributes)
        if n == 3:
            event = span.events.add(name="exception", time_unix_nano=1)
            event.attributes.append(string_value("exception.message", "mail zoe@example.com"))
            link = span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
            link.attributes.append(string_value("http.route", "/pay"))
        if n == 5:
            span.name = "n" * 50
    return request


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, SMALL_LIMITS])
@pytest.mark.parametrize("redactor", [None, REDACTOR])
def test_every_path_gives_the_reference_table(
    limits: IngestLimits, redactor: IngestRedactor | None
) -> None:
    """Plain, repeated, redacted, over-limit and nested attributes: the same rows, twice."""
    decoder = SpanDecoder(limits, redactor)
    body = varied_request().SerializeToString()
    assert_same(decoder, body, limits, redactor)
    # Again, now that the decoder remembers the attributes.
    assert_same(decoder, body, limits, redactor)


def test_malformed_attribute_is_refused_with_the_reference_message() -> None:
    """An attribute that is not valid protobuf (non-UTF-8 key) gets the stock parse error."""
    request = one_span_request()
    request.resource_spans[0].scope_spans[0].spans[0].attributes.append(string_value("k" * 5, "v"))
    body = bytearray(request.SerializeToString())
    at = bytes(body).index(b"kkkkk")
    body[at] = 0xFF
    decoder = SpanDecoder()
    expected = outcome_of_reference(bytes(body), DEFAULT_LIMITS, None)
    assert expected[0] == "refused"
    assert "not a valid protobuf ExportTraceServiceRequest" in str(expected[1])
    assert_same(decoder, bytes(body), DEFAULT_LIMITS, None)


def test_mutated_payloads_give_the_reference_outcome() -> None:
    """3,000 byte-mutated requests: each decodes to the same table or the same error."""
    rng = random.Random(SEED)
    protobuf, json_bodies = seeds()
    protobuf.append(varied_request().SerializeToString())
    plain = SpanDecoder(DEFAULT_LIMITS, None)
    redacting = SpanDecoder(DEFAULT_LIMITS, REDACTOR)
    batches = 0
    for _ in range(MUTATED_PAYLOADS):
        body = mutate_bytes(rng.choice(protobuf), rng, protobuf + json_bodies)
        assert_same(plain, body, DEFAULT_LIMITS, None)
        assert_same(redacting, body, DEFAULT_LIMITS, REDACTOR)
        batches += outcome_of(plain, body)[0] == "batch"
    assert batches > MUTATED_PAYLOADS // 20  # mutations that still decode were compared too


_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["zoe@example.com", "Bearer abc.def.ghi", "4111 1111 1111 1111", ""]),
)


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["http.route", "user.id", "session.id", "password", "k", "url.full"]
                ),
                _values,
            ),
            max_size=6,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_generated_attributes_give_the_reference_table(
    spans: list[list[tuple[str, str]]],
) -> None:
    """Hypothesis: any attribute lists, redacted or not, decode to the reference table."""
    request = one_span_request()
    scope = request.resource_spans[0].scope_spans[0]
    template = scope.spans[0]
    del scope.spans[:]
    for n, attributes in enumerate(spans):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 1).to_bytes(8, "big")
        span.attributes.extend(string_value(key, value) for key, value in attributes)
    body = request.SerializeToString()
    for redactor in (None, REDACTOR):
        assert_same(SpanDecoder(SMALL_LIMITS, redactor), body, SMALL_LIMITS, redactor)


def test_memory_of_attributes_is_bounded() -> None:
    """More distinct attributes than it may remember: the memory starts over, rows stay right."""
    decoder = SpanDecoder()
    request = one_span_request()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.extend(string_value("url.path", f"/item/{n}") for n in range(900))
    for _ in range(MAX_REMEMBERED // 900 + 2):
        for attribute in span.attributes:
            attribute.value.string_value += "x"
        body = request.SerializeToString()
        assert_same(decoder, body, DEFAULT_LIMITS, None)
    assert 0 < decoder.remembered <= MAX_REMEMBERED
