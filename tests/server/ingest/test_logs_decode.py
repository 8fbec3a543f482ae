"""Decoding OTLP log requests: any body type kept safely, huge bodies cut and marked,
bad ids unlinked rather than refused, journey keys and redaction as for spans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as OtlpLogRecord

from threadline.server.errors import BadRequest, PayloadTooLarge
from threadline.server.ingest.decode import PayloadFormat
from threadline.server.ingest.limits import TRUNCATED_KEY, IngestLimits
from threadline.server.ingest.logs_decode import UNLINKED_KEY, decode_logs
from threadline.server.ingest.redact import ingest_redactor
from threadline.server.log_batch import LogBatch, LogRecord, log_from_row
from threadline.settings import ServerSettings

RECEIVED_NS: Final = 1_700_000_000_000_000_000
TRACE: Final = bytes(range(1, 17))
SPAN: Final = bytes(range(1, 9))


def request(*records: OtlpLogRecord, resource: dict[str, str] | None = None) -> bytes:
    message = ExportLogsServiceRequest()
    resource_logs = message.resource_logs.add()
    for key, value in (resource or {"service.name": "payments"}).items():
        resource_logs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    resource_logs.scope_logs.add(log_records=records)
    return message.SerializeToString()


def decoded(body: bytes, **options: Any) -> list[LogRecord]:
    batch: LogBatch = decode_logs(body, PayloadFormat.PROTOBUF, RECEIVED_NS, **options)
    return [log_from_row(tuple(row.values())) for row in batch.table.to_pylist()]


@pytest.mark.parametrize(
    ("body", "kind", "stored"),
    [
        (AnyValue(string_value="<b>card declined</b>"), "string", "<b>card declined</b>"),
        (AnyValue(int_value=7), "json", "7"),
        (AnyValue(bytes_value=b"\x00\xff"), "json", '"AP8="'),
        (
            AnyValue(
                kvlist_value=KeyValueList(
                    values=[
                        KeyValue(
                            key="items",
                            value=AnyValue(
                                array_value=ArrayValue(
                                    values=[AnyValue(int_value=1), AnyValue(bool_value=True)]
                                )
                            ),
                        )
                    ]
                )
            ),
            "json",
            '{"items":[1,true]}',
        ),
        (AnyValue(), "empty", ""),
    ],
    ids=["string", "int", "bytes", "nested-map", "empty"],
)
def test_every_body_type_is_stored_as_text_with_its_kind(
    body: AnyValue, kind: str, stored: str
) -> None:
    """A string body is kept as sent (markup is text, not HTML); others as compact JSON."""
    [record] = decoded(request(OtlpLogRecord(body=body, trace_id=TRACE, span_id=SPAN)))
    assert (record.body, record.body_kind) == (stored, kind)


def test_a_huge_body_is_cut_to_the_limit_and_marked() -> None:
    """A body past max_attribute_value_length keeps its start and lists ``body`` as truncated."""
    limits = IngestLimits(max_attribute_value_length=100)
    body = AnyValue(string_value="x" * 10_000)
    [record] = decoded(request(OtlpLogRecord(body=body)), limits=limits)
    assert record.body == "x" * 100
    assert record.attributes[TRUNCATED_KEY] == ["body"]


def test_a_huge_structured_body_becomes_its_cut_text() -> None:
    """Cut JSON is no longer JSON: it is kept as text so no reader parses half a document."""
    limits = IngestLimits(max_attribute_value_length=50)
    values = [AnyValue(string_value="item") for _ in range(100)]
    body = AnyValue(array_value=ArrayValue(values=values))
    [record] = decoded(request(OtlpLogRecord(body=body)), limits=limits)
    assert record.body_kind == "string"
    assert len(record.body) == 50
    assert record.attributes[TRUNCATED_KEY] == ["body"]


@pytest.mark.parametrize(
    ("trace_id", "span_id", "unlinked"),
    [
        (b"\x01" * 15, SPAN, ["trace_id", "span_id"]),
        (bytes(16), SPAN, ["trace_id", "span_id"]),
        (TRACE, b"\x01" * 9, ["span_id"]),
    ],
    ids=["short-trace", "zero-trace", "long-span"],
)
def test_a_bad_id_is_dropped_and_the_record_kept(
    trace_id: bytes, span_id: bytes, unlinked: list[str]
) -> None:
    """A bad trace id unlinks the record (and its span id); the line itself is kept."""
    body = AnyValue(string_value="kept")
    [record] = decoded(request(OtlpLogRecord(body=body, trace_id=trace_id, span_id=span_id)))
    assert record.body == "kept"
    assert record.attributes[UNLINKED_KEY] == unlinked
    if "trace_id" not in unlinked:
        assert record.trace_id == TRACE.hex()
        assert record.span_id is None


def test_times_fall_back_to_observed_then_to_arrival() -> None:
    """No timestamp: the observed time; neither: when the request arrived."""
    observed, none = decoded(
        request(OtlpLogRecord(observed_time_unix_nano=RECEIVED_NS - 5), OtlpLogRecord())
    )
    assert (observed.time_ns, observed.observed_ns) == (RECEIVED_NS - 5, RECEIVED_NS - 5)
    assert (none.time_ns, none.observed_ns) == (RECEIVED_NS, RECEIVED_NS)


def test_journey_keys_come_from_the_record_or_its_resource() -> None:
    """Journey keys on the record win over the resource's; the service is the resource's."""
    attrs = [KeyValue(key="session.id", value=AnyValue(string_value="s-record"))]
    [record] = decoded(
        request(
            OtlpLogRecord(attributes=attrs),
            resource={"service.name": "web", "session.id": "s-res", "user.id": "u-res"},
        )
    )
    assert (record.service_name, record.session_id, record.user_id) == ("web", "s-record", "u-res")


def test_redaction_runs_on_bodies_and_attributes(tmp_path: Path) -> None:
    """A card number in the body and an e-mail in an attribute never reach the batch."""
    redactor = ingest_redactor(ServerSettings(db=tmp_path / "x.duckdb"))
    attrs = [KeyValue(key="note", value=AnyValue(string_value="mail ann@example.com"))]
    body = AnyValue(string_value="card 4111 1111 1111 1111 declined")
    [record] = decoded(request(OtlpLogRecord(body=body, attributes=attrs)), redactor=redactor)
    stored = json.dumps([record.body, dict(record.attributes)])
    assert "4111 1111 1111 1111" not in stored
    assert "ann@example.com" not in stored
    assert "body" in record.attributes["threadline.redacted"]


def test_too_many_records_is_413_and_not_otlp_is_400() -> None:
    """Only what cannot be a log request at all, or too much of one, is refused."""
    with pytest.raises(PayloadTooLarge, match="3 log records"):
        decoded(request(*[OtlpLogRecord()] * 3), limits=IngestLimits(max_spans_per_request=2))
    with pytest.raises(BadRequest, match="ExportLogsServiceRequest"):
        decoded(b"\xff\xff\xff")
    with pytest.raises(BadRequest, match="JSON"):
        decode_logs(b"[1]", PayloadFormat.JSON, RECEIVED_NS)
