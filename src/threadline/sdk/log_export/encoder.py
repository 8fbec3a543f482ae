"""OTLP protobuf encoding of captured log records, written byte by byte (as spans are
in ``export.encoder``; the SDK does not depend on the generated protobuf classes).

Messages written (field numbers from opentelemetry/proto/logs/v1/logs.proto)::

    ExportLogsServiceRequest { 1: ResourceLogs* }
    ResourceLogs { 1: Resource { 1: KeyValue* }, 2: ScopeLogs* }
    ScopeLogs    { 1: InstrumentationScope { 1: name }, 2: LogRecord* }
    LogRecord { 1 time fixed64, 2 severity_number, 3 severity_text, 5 body AnyValue,
                6 KeyValue*, 8 flags fixed32, 9 trace_id, 10 span_id, 11 observed fixed64 }

The scope of a record is its logger's name, as the stock OpenTelemetry handler sets it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Final

from threadline.sdk.export.encoder import any_value, key_value, varint
from threadline.sdk.log_export.record import EncodedLog

_FIXED64: Final = struct.Struct("<Q")
_FIXED32: Final = struct.Struct("<I")


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


class LogEncoder:
    """Encodes batches of prepared records under one resource."""

    def __init__(self, resource: Mapping[str, object]) -> None:
        body = b"".join(_field(b"\x0a", key_value(k, v)) for k, v in resource.items())
        self._resource_field = _field(b"\x0a", body)

    def encode_request(self, records: Iterable[EncodedLog]) -> bytes:
        by_scope: dict[str, list[bytes]] = {}
        for record in records:
            by_scope.setdefault(record.scope, []).append(_field(b"\x12", encode_record(record)))
        scopes = b"".join(
            _field(b"\x12", _field(b"\x0a", _field(b"\x0a", scope.encode())) + b"".join(encoded))
            for scope, encoded in by_scope.items()
        )
        return _field(b"\x0a", self._resource_field + scopes)


def encode_record(record: EncodedLog) -> bytes:
    parts = [
        b"\x09" + _FIXED64.pack(record.time_ns),
        b"\x10" + varint(record.severity_number),
        _field(b"\x1a", record.severity_text.encode()),
        _field(b"\x2a", any_value(record.body)),
    ]
    parts.extend(_field(b"\x32", key_value(k, v)) for k, v in record.attributes.items())
    if record.trace_id:
        parts.append(b"\x45" + _FIXED32.pack(record.flags))
        parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
        parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    parts.append(b"\x59" + _FIXED64.pack(record.observed_ns))
    return b"".join(parts)
