"""OTLP log payloads (protobuf or JSON bytes) to a ``LogBatch``.

Pure: bytes in, batch out, no I/O. It shares the span decoder's parts (attribute
decoding, limits, redaction, journey keys), so a log record's attributes are cut,
marked and redacted exactly as a span's are. What differs is what is refused: a log
line is worth keeping even when its link to a trace is broken, so

- a trace or span id of the wrong length (or all zeros) is dropped and the record
  kept without the link, the attribute ``threadline.unlinked`` naming the id;
- a body of any type is kept: a string as it is, anything else (number, bytes,
  array, map) as compact JSON; a body longer than ``max_attribute_value_length``
  characters is cut and ``body`` is listed in ``threadline.truncated``;
- a record without a timestamp takes its observed time, and one without either the
  time the request arrived.

Only a request that is not OTLP at all, or holds more records than
``max_spans_per_request``, is refused (400, 413).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.server.batch import dumps
from threadline.server.errors import BadRequest, PayloadTooLarge
from threadline.server.ingest import otlp_json
from threadline.server.ingest.attributes import (
    any_value,
    bounded_attributes,
    journey_key,
    listed,
    resource_of,
)
from threadline.server.ingest.decode import (
    MAX_TIME_NS,
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    PayloadFormat,
)
from threadline.server.ingest.limits import DEFAULT_LIMITS, IngestLimits, cut_text
from threadline.server.ingest.redact import IngestRedactor
from threadline.server.log_batch import LOG_COLUMNS, BodyKind, LogBatch

UNLINKED_KEY: Final = "threadline.unlinked"
BODY_MARK: Final = "body"
# OpenTelemetry log data model: severity numbers run 1..24, 0 is "unspecified".
MAX_SEVERITY: Final = 24

# A JSON id that is not hex is replaced by this one byte, which the decoder then
# finds to be of the wrong length: the record is kept unlinked, as a protobuf record
# with a bad id is, instead of the whole request being refused.
_NOT_HEX: Final = base64.b64encode(b"\x00").decode("ascii")
_ID_FIELDS: Final = ("traceId", "spanId", "trace_id", "span_id")


def decode_logs(
    body: bytes,
    payload_format: PayloadFormat,
    received_ns: int,
    limits: IngestLimits = DEFAULT_LIMITS,
    redactor: IngestRedactor | None = None,
) -> LogBatch:
    """Decode an uncompressed OTLP ``ExportLogsServiceRequest`` body."""
    if payload_format is PayloadFormat.PROTOBUF:
        request = ExportLogsServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(
                f"body is not a valid protobuf ExportLogsServiceRequest: {exc}"
            ) from exc
    else:
        request = otlp_json.parse_message(body, ExportLogsServiceRequest, _hex_ids_to_base64)
    return request_to_logs(request, received_ns, limits, redactor)


def request_to_logs(
    request: ExportLogsServiceRequest,
    received_ns: int,
    limits: IngestLimits = DEFAULT_LIMITS,
    redactor: IngestRedactor | None = None,
) -> LogBatch:
    """Every log record of ``request`` as one columnar batch."""
    count = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    if count > limits.max_spans_per_request:
        raise PayloadTooLarge(
            f"the request holds {count} log records; the limit is "
            f"{limits.max_spans_per_request} (max_spans_per_request): send smaller batches"
        )
    try:
        columns = _columns(request, received_ns, limits, redactor)
    except RecursionError as exc:
        raise BadRequest("attribute or body values are nested too deeply") from exc
    return LogBatch.from_columns(columns)


def _columns(
    request: ExportLogsServiceRequest,
    received_ns: int,
    limits: IngestLimits,
    redactor: IngestRedactor | None,
) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in LOG_COLUMNS}
    for resource_logs in request.resource_logs:
        resource = resource_of(resource_logs, limits, redactor)
        service, resource_json = resource.service, resource.json
        for scope_logs in resource_logs.scope_logs:
            scope_name = scope_logs.scope.name
            scope_found: list[str] = []
            if redactor is not None:
                scope_name = redactor.text(scope_name, "scope.name", scope_found)
            scope_name = cut_text(scope_name, limits)
            for record in scope_logs.log_records:
                found = list(scope_found)
                marks: list[str] = []
                body, kind = _body(record.body, limits, redactor, found, marks)
                trace_id, span_id = _link(record.trace_id, record.span_id, marks)
                unlinked = [m for m in marks if m in ("trace_id", "span_id")]
                truncated = [m for m in marks if m not in unlinked]
                redact = None if redactor is None else listed(redactor, found)
                attrs, attrs_json = bounded_attributes(record.attributes, limits, truncated, redact)
                if unlinked:
                    attrs[UNLINKED_KEY] = unlinked
                    attrs_json = dumps(attrs)
                observed = _time(record.observed_time_unix_nano, received_ns)
                columns["time_ns"].append(_time(record.time_unix_nano, observed))
                columns["observed_ns"].append(observed)
                columns["trace_id"].append(trace_id)
                columns["span_id"].append(span_id)
                columns["service_name"].append(service)
                severity = record.severity_number
                columns["severity_number"].append(severity if 0 <= severity <= MAX_SEVERITY else 0)
                columns["severity_text"].append(cut_text(record.severity_text, limits))
                columns["body"].append(body)
                columns["body_kind"].append(kind)
                for column, key, from_resource in zip(
                    ("session_id", "user_id", "journey_id"),
                    (SESSION_ID, USER_ID, JOURNEY_ID),
                    resource.journey_keys,
                    strict=True,
                ):
                    columns[column].append(journey_key(attrs.get(key)) or from_resource)
                columns["attributes"].append(attrs_json)
                columns["resource"].append(resource_json)
                columns["scope_name"].append(scope_name)
    return columns


def _time(value: int, fallback: int) -> int:
    # Zero means "unknown" in OTLP; a time past int64 cannot be stored.
    return value if 0 < value <= MAX_TIME_NS else fallback


def _link(trace_id: bytes, span_id: bytes, marks: list[str]) -> tuple[str | None, str | None]:
    """The record's trace and span id as hex, or None with the bad one named in ``marks``."""
    trace: str | None = None
    span: str | None = None
    if trace_id:
        if len(trace_id) == TRACE_ID_BYTES and trace_id != ZERO_TRACE_ID:
            trace = trace_id.hex()
        else:
            marks.append("trace_id")
    if span_id:
        if len(span_id) == SPAN_ID_BYTES and span_id != ZERO_SPAN_ID and trace is not None:
            span = span_id.hex()
        else:
            marks.append("span_id")
    return trace, span


def _body(
    value: AnyValue,
    limits: IngestLimits,
    redactor: IngestRedactor | None,
    found: list[str],
    marks: list[str],
) -> tuple[str, BodyKind]:
    """The body as stored text and its kind; redacted first, then cut to the limit."""
    kind = value.WhichOneof("value")
    text: str
    body_kind: BodyKind
    if kind is None:
        return "", "empty"
    if kind == "string_value":
        text = value.string_value
        if redactor is not None:
            text = redactor.text(text, BODY_MARK, found)
        body_kind = "string"
    else:
        decoded = any_value(value)
        if redactor is not None:
            decoded = redactor.attributes({BODY_MARK: decoded}, found)[BODY_MARK]
        text = dumps(decoded)
        body_kind = "json"
    limit = limits.max_attribute_value_length
    if len(text) > limit:
        # Cut JSON is no longer JSON: it is shown as the text it now is.
        text, body_kind = text[:limit], "string"
        marks.append(BODY_MARK)
    return text, body_kind


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite log records' hex ids in place; one that is not hex becomes a bad id."""
    for _, resource_logs in otlp_json.items(document, "resourceLogs", "resource_logs"):
        for _, scope_logs in otlp_json.items(resource_logs, "scopeLogs", "scope_logs"):
            for _, record in otlp_json.items(scope_logs, "logRecords", "log_records"):
                for field in _ID_FIELDS:
                    text = record.get(field)
                    if text is None or text == "":
                        continue
                    record[field] = _hex_or_bad(text)


def _hex_or_bad(text: object) -> str:
    if isinstance(text, str) and text.isascii() and text.isalnum():
        try:
            return base64.b64encode(binascii.unhexlify(text)).decode("ascii")
        except binascii.Error:
            pass
    return _NOT_HEX
