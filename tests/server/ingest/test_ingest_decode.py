"""Decoding OTLP payloads (protobuf and JSON) into span batches, without a server."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.trace.v1 import trace_pb2

from threadline.server.errors import BadRequest, InvalidPayload
from threadline.server.ingest import otlp_json
from threadline.server.ingest.attributes import any_value
from threadline.server.ingest.decode import PayloadFormat, decode
from threadline.server.model import SpanEvent, SpanKind, SpanLink, SpanRecord, StatusCode

from .otlp_payloads import (
    HAND_WRITTEN_JSON,
    by_span_id,
    expected_record,
    one_span_request,
    protobuf_request,
    records,
    sdk_spans,
    string_value,
    to_otlp_json,
)


def test_hand_written_otlp_json_from_other_languages_is_decoded() -> None:
    """OTLP JSON as non-Python SDKs send it decodes to the span it describes."""
    [span] = records(decode(HAND_WRITTEN_JSON.encode(), PayloadFormat.JSON))
    assert span == SpanRecord(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        parent_span_id="eee19b7ec3c1b173",
        service_name="frontend-js",
        name="HTTP GET",
        kind=SpanKind.CLIENT,
        start_ns=1544712660000000000,
        end_ns=1544712661000000000,
        status=StatusCode.ERROR,
        status_message="upstream unavailable",
        session_id="browser-session-1",
        user_id="user-9",
        journey_id=None,
        attributes={
            "http.response.status_code": 503,
            "retry": True,
            "ratio": 0.25,
            "tags": ["a", 2],
            "user.id": "user-9",
        },
        resource={"service.name": "frontend-js", "session.id": "browser-session-1"},
        events=(SpanEvent("first byte", 1544712660500000000, {"size": 1024}),),
        links=(SpanLink("0102030405060708090a0b0c0d0e0f10", "0102030405060708", {}),),
        scope_name="@opentelemetry/instrumentation-fetch",
    )


def test_sdk_spans_decode_to_what_the_sdk_recorded() -> None:
    """Every field of spans from the OpenTelemetry SDK survives protobuf decoding."""
    spans = sdk_spans()
    decoded = by_span_id(
        records(decode(protobuf_request(spans).SerializeToString(), PayloadFormat.PROTOBUF))
    )
    expected = by_span_id([expected_record(s) for s in spans])
    assert decoded == expected


def test_json_and_protobuf_of_one_request_decode_identically() -> None:
    """A request sent as OTLP JSON is stored exactly as the same request sent as protobuf."""
    request = protobuf_request(sdk_spans())
    from_protobuf = records(decode(request.SerializeToString(), PayloadFormat.PROTOBUF))
    from_json = records(decode(to_otlp_json(request), PayloadFormat.JSON))
    assert from_json == from_protobuf
    assert len(from_json) == 5


def _value(**kwargs: Any) -> AnyValue:
    return AnyValue(**kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (_value(string_value="text"), "text"),
        (_value(bool_value=False), False),
        (_value(int_value=-(2**63)), -(2**63)),
        (_value(double_value=1.5), 1.5),
        (_value(double_value=math.inf), "Infinity"),
        (_value(double_value=-math.inf), "-Infinity"),
        (_value(double_value=math.nan), "NaN"),
        (_value(bytes_value=b"\x00\xffbin"), "AP9iaW4="),
        (AnyValue(), None),
        (
            _value(
                array_value=ArrayValue(
                    values=[_value(int_value=1), _value(string_value="two"), AnyValue()]
                )
            ),
            [1, "two", None],
        ),
        (
            _value(
                kvlist_value=KeyValueList(
                    values=[
                        KeyValue(key="inner", value=_value(bool_value=True)),
                        KeyValue(
                            key="deeper",
                            value=_value(
                                kvlist_value=KeyValueList(
                                    values=[KeyValue(key="n", value=_value(int_value=3))]
                                )
                            ),
                        ),
                    ]
                )
            ),
            {"inner": True, "deeper": {"n": 3}},
        ),
    ],
)
def test_any_value_becomes_json_able(value: AnyValue, expected: object) -> None:
    """Every OTLP attribute value type is stored as the JSON value a reader expects."""
    converted = any_value(value)
    assert converted == expected
    json.dumps(converted, allow_nan=False)  # strict JSON: no NaN/Infinity literals


def test_missing_service_name_is_unknown_service() -> None:
    """Spans from a resource without service.name are stored under unknown_service."""
    request = one_span_request()
    del request.resource_spans[0].resource.attributes[:]
    [span] = records(decode(request.SerializeToString(), PayloadFormat.PROTOBUF))
    assert span.service_name == "unknown_service"


def test_journey_keys_prefer_span_attributes_over_resource() -> None:
    """session.id / user.id / journey.id come from the span, else from its resource."""
    request = one_span_request(
        attributes=[string_value("session.id", "from-span"), string_value("user.id", "")]
    )
    resource = request.resource_spans[0].resource
    resource.attributes.extend(
        [
            string_value("session.id", "from-resource"),
            string_value("user.id", "resource-user"),
            KeyValue(key="journey.id", value=AnyValue(int_value=77)),
        ]
    )
    [span] = records(decode(request.SerializeToString(), PayloadFormat.PROTOBUF))
    assert (span.session_id, span.user_id, span.journey_id) == ("from-span", "resource-user", "77")


@pytest.mark.parametrize(
    ("kind", "status", "expected_kind", "expected_status"),
    [
        (0, 0, SpanKind.UNSPECIFIED, StatusCode.UNSET),
        (1, 1, SpanKind.INTERNAL, StatusCode.OK),
        (2, 2, SpanKind.SERVER, StatusCode.ERROR),
        (3, 0, SpanKind.CLIENT, StatusCode.UNSET),
        (4, 0, SpanKind.PRODUCER, StatusCode.UNSET),
        (5, 0, SpanKind.CONSUMER, StatusCode.UNSET),
        (42, 9, SpanKind.UNSPECIFIED, StatusCode.UNSET),
    ],
)
def test_kind_and_status_numbers_map_to_stored_values(
    kind: int, status: int, expected_kind: SpanKind, expected_status: StatusCode
) -> None:
    """OTLP enum numbers map to span kinds and status codes; unknown numbers to the default."""
    request = one_span_request(kind=kind, status=trace_pb2.Status(code=status, message="m"))
    [span] = records(decode(request.SerializeToString(), PayloadFormat.PROTOBUF))
    assert (span.kind, span.status, span.status_message) == (expected_kind, expected_status, "m")


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"trace_id": b"\x01" * 15}, "spans[1].traceId", "must be 16 bytes, got 15"),
        ({"trace_id": b"\x01" * 17}, "spans[1].traceId", "got 17"),
        ({"trace_id": b""}, "spans[1].traceId", "got 0"),
        ({"trace_id": bytes(16)}, "spans[1].traceId", "must not be all zeros"),
        ({"span_id": b"\x01" * 7}, "spans[1].spanId", "must be 8 bytes, got 7"),
        ({"span_id": bytes(8)}, "spans[1].spanId", "must not be all zeros"),
        ({"parent_span_id": b"\x01" * 4}, "spans[1].parentSpanId", "empty or 8 bytes, got 4"),
        ({"start_time_unix_nano": 2**64 - 1}, "spans[1].startTimeUnixNano", "at most"),
        ({"end_time_unix_nano": 2**63}, "spans[1].endTimeUnixNano", "at most"),
        (
            {"links": [trace_pb2.Span.Link(trace_id=b"\x01" * 16, span_id=b"\x01" * 3)]},
            "spans[1].links[0].spanId",
            "must be 8 bytes, got 3",
        ),
    ],
)
def test_invalid_span_rejects_the_whole_request_naming_span_and_problem(
    fields: dict[str, Any], field: str, problem: str
) -> None:
    """An invalid span gets a 400 naming which span, which field and what is wrong."""
    request = one_span_request()
    spans = request.resource_spans[0].scope_spans[0].spans
    # A valid span comes first: the request is refused whole, not cut at the bad span.
    bad = spans.add()
    bad.CopyFrom(spans[0])
    bad.span_id = b"\x02" * 8
    for name, value in fields.items():
        if name == "links":
            bad.links.extend(value)
        else:
            setattr(bad, name, value)
    with pytest.raises(InvalidPayload) as raised:
        decode(request.SerializeToString(), PayloadFormat.PROTOBUF)
    assert raised.value.status_code == 400
    assert raised.value.field == f"resourceSpans[0].scopeSpans[0].{field}"
    assert problem in raised.value.message
    assert "'charge card'" in raised.value.message


def test_a_span_without_parent_is_a_root() -> None:
    """An empty parentSpanId is stored as no parent."""
    [span] = records(decode(one_span_request().SerializeToString(), PayloadFormat.PROTOBUF))
    assert span.parent_span_id is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xff\xff\xff", "not a valid protobuf"),
        (b"\x0a\x05\x0a\x03", "not a valid protobuf"),
    ],
)
def test_malformed_protobuf_is_a_bad_request(body: bytes, message: str) -> None:
    """Bytes that are not an ExportTraceServiceRequest are a 400 that says so."""
    with pytest.raises(BadRequest, match=message):
        decode(body, PayloadFormat.PROTOBUF)


def _json_with_span(**span: object) -> bytes:
    base: dict[str, object] = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "n",
    }
    base.update(span)
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [base]}]}]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"resourceSpans": 5}', "not a valid OTLP JSON"),
        (_json_with_span(startTimeUnixNano="soon"), "not a valid OTLP JSON"),
        (_json_with_span(attributes={"k": "v"}), "not a valid OTLP JSON"),
        (_json_with_span(traceId="zz8efff798038103d269b633813fc60c"), "traceId: must be a hex"),
        (_json_with_span(spanId="eee19b7ec3c1b17"), "spanId: must be a hex"),
        (_json_with_span(spanId="ee e1 9b 7e c3 c1 b1 74"), "spanId: must be a hex"),
        (_json_with_span(parentSpanId=12), "parentSpanId: must be a hex string, got int"),
        (_json_with_span(traceId="XrvzcyOApUyiEeAFQlxUDQ=="), "traceId: must be a hex"),
        (_json_with_span(spanId="0000000000000000"), "spanId: must not be all zeros"),
        (_json_with_span(name="\ud800"), "Unpaired surrogate"),
        (
            _json_with_span(links=[{"traceId": "01" * 16, "spanId": "nothex!!"}]),
            "links[0].spanId: must be a hex",
        ),
    ],
)
def test_malformed_json_is_a_bad_request_with_a_message(body: bytes, message: str) -> None:
    """Anything that is not OTLP JSON with hex ids is a 400 that says what is wrong."""
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode(body, PayloadFormat.JSON)


def test_json_accepts_integers_as_strings_or_numbers_and_ignores_unknown_fields() -> None:
    """64-bit integers may be JSON strings or numbers; unknown fields are skipped."""
    as_strings = _json_with_span(startTimeUnixNano="5", endTimeUnixNano="9", futureField=[1])
    as_numbers = _json_with_span(startTimeUnixNano=5, endTimeUnixNano=9)
    [a] = records(decode(as_strings, PayloadFormat.JSON))
    [b] = records(decode(as_numbers, PayloadFormat.JSON))
    assert a == b
    assert (a.start_ns, a.end_ns, a.duration_ns) == (5, 9, 4)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, for payloads the message classes refuse to build."""
    length = len(payload)
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(varint) + payload


def _nested_value(depth: int) -> bytes:
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value -> ArrayValue.values
    return value


def test_deeply_nested_attribute_values_are_a_bad_request() -> None:
    """Attribute values nested past the parsers' depth limits are a 400, not a crash."""
    attribute = _field(1, b"deep") + _field(2, _nested_value(300))  # KeyValue
    span = _field(1, b"\x01" * 16) + _field(2, b"\x01" * 8) + _field(9, attribute)
    body = _field(1, _field(2, _field(2, span)))  # request.resource_spans.scope_spans.spans
    with pytest.raises(BadRequest, match="not a valid protobuf"):
        decode(body, PayloadFormat.PROTOBUF)

    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(300):
        value = {"arrayValue": {"values": [value]}}
    json_body = _json_with_span(attributes=[{"key": "deep", "value": value}])
    with pytest.raises(BadRequest, match="not a valid OTLP JSON") as raised:
        decode(json_body, PayloadFormat.JSON)
    assert len(raised.value.message) < 600


def test_moderately_nested_attribute_values_are_kept() -> None:
    """Nesting within the limits is decoded to nested lists."""
    attribute = _field(1, b"nested") + _field(2, _nested_value(20))
    span = _field(1, b"\x01" * 16) + _field(2, b"\x01" * 8) + _field(9, attribute)
    [record] = records(decode(_field(1, _field(2, _field(2, span))), PayloadFormat.PROTOBUF))
    value = record.attributes["nested"]
    for _ in range(20):
        assert isinstance(value, list)
        [value] = value
    assert value == "leaf"


def test_empty_request_is_an_empty_batch() -> None:
    """A request without spans decodes to a batch of zero spans, in both encodings."""
    assert len(decode(b"", PayloadFormat.PROTOBUF)) == 0
    assert len(decode(b"{}", PayloadFormat.JSON)) == 0
    empty_scope = ExportTraceServiceRequest()
    empty_scope.resource_spans.add().scope_spans.add()
    assert len(decode(empty_scope.SerializeToString(), PayloadFormat.PROTOBUF)) == 0


def _reference_parse(body: bytes) -> ExportTraceServiceRequest:
    """protobuf's own JSON parser, after turning OTLP's hex ids into protobuf's base64."""
    document = json.loads(body)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId", "span_id"):
                        if key in item:
                            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)


def _json_with_value(value: object, **span: object) -> bytes:
    return _json_with_span(attributes=[{"key": "k", "value": value}], **span)


@pytest.mark.parametrize(
    "body",
    [
        HAND_WRITTEN_JSON.encode(),
        to_otlp_json(protobuf_request(sdk_spans())),
        _json_with_value({"intValue": 3.0}),
        _json_with_value({"intValue": "-9223372036854775808"}),
        _json_with_value({"doubleValue": "NaN"}),
        _json_with_value({"doubleValue": "-Infinity"}),
        _json_with_value({"doubleValue": 7}),
        _json_with_value({"bytesValue": "AP-_"}),
        _json_with_value({"bytesValue": "AP+/"}),
        _json_with_value({"stringValue": None}),
        _json_with_value({"arrayValue": {"values": [{"kvlistValue": {"values": []}}, {}]}}),
        _json_with_span(kind="SPAN_KIND_PRODUCER", status={"code": "STATUS_CODE_ERROR"}),
        _json_with_span(start_time_unix_nano="12", end_time_unix_nano=15, droppedEventsCount=2),
        _json_with_span(events=[{"name": "e", "timeUnixNano": "1", "attributes": None}]),
        _json_with_span(spanId="0102030405060708", span_id="0807060504030201"),
        _json_with_span(kind=2**40),
    ],
    ids=[
        "hand-written",
        "sdk",
        "integral-float-int",
        "min-int64",
        "nan-string",
        "minus-infinity-string",
        "integer-double",
        "urlsafe-bytes",
        "standard-bytes",
        "null-value",
        "nested-empty",
        "enum-names",
        "proto-field-names",
        "null-list",
        "both-spellings",
        "enum-out-of-range",
    ],
)
def test_json_parsing_matches_protobufs_json_mapping(body: bytes) -> None:
    """Every OTLP JSON shape parses to exactly what protobuf's JSON mapping makes of it."""
    assert otlp_json.parse_export_request(body) == _reference_parse(body)


@pytest.mark.parametrize(
    "body",
    [
        _json_with_value({"stringValue": "a", "intValue": 1}),
        _json_with_value({"intValue": 1.5}),
        _json_with_value({"intValue": str(2**64)}),
        _json_with_value({"doubleValue": 1e400}),
        _json_with_value({"boolValue": "true"}),
        _json_with_value({"bytesValue": "not base64!"}),
    ],
    ids=[
        "two-oneof-members",
        "fractional-int",
        "int-overflow",
        "infinite-double",
        "quoted-bool",
        "bad-bytes",
    ],
)
def test_json_that_protobufs_mapping_refuses_is_a_bad_request(body: bytes) -> None:
    """JSON that protobuf's JSON mapping refuses is a 400 worded by that mapping."""
    with pytest.raises(json_format.ParseError) as reference:
        _reference_parse(body)
    with pytest.raises(BadRequest) as raised:
        otlp_json.parse_export_request(body)
    assert str(reference.value)[-60:] in raised.value.message
