"""OTLP protobuf encoding of compact spans, written byte by byte.

The stock exporter builds a tree of generated protobuf message objects for every span
and then serialises it; most of its cost is object construction. The wire format of the
few messages a span needs is simple (tag, varint length, bytes), so we write it
directly, and cache what repeats between spans: an encoded attribute
(key + value), the resource and the scope. ``bench/export.py`` compares the CPU per span
with the stock exporter's; ``tests/sdk/export/test_encoder.py`` decodes our bytes with
the official ``opentelemetry-proto`` classes and compares them field by field with the
stock encoding of the same spans.

Messages written (field numbers from opentelemetry/proto/trace/v1/trace.proto and
common/v1/common.proto)::

    ExportTraceServiceRequest { 1: ResourceSpans* }
    ResourceSpans { 1: Resource { 1: KeyValue* }, 2: ScopeSpans* }
    ScopeSpans    { 1: InstrumentationScope { 1: name, 2: version, 3: KeyValue* }, 2: Span* }
    Span { 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind,
           7 start fixed64, 8 end fixed64, 9 KeyValue*, 10 dropped attrs, 11 Event*,
           12 dropped events, 13 Link*, 14 dropped links, 15 Status, 16 flags fixed32 }
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.trace import SpanKind, StatusCode

from threadline.sdk.export.compact import (
    ATTRIBUTES,
    CONTEXT,
    DROPPED,
    END,
    EVENTS,
    JOURNEY,
    KIND,
    LINKS,
    NAME,
    PARENT,
    RESOURCE,
    SCOPE,
    START,
    STATUS,
    CompactSpan,
)

# An attribute cache entry costs ~150 B; spans repeat a few hundred distinct
# key/value pairs in practice (routes, methods, regions, session ids of one batch).
# Clearing a full cache is O(n) once per this many new values, and keeps memory fixed.
ATTRIBUTE_CACHE_SIZE: Final = 4096

# OTLP span flags: the low byte carries W3C trace flags; bit 8 says whether bit 9
# (parent is remote) is known. See trace.proto SpanFlags.
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200

_U64: Final = 0xFFFF_FFFF_FFFF_FFFF
_START_END: Final = struct.Struct("<BQBQ")
_FIXED64: Final = struct.Struct("<Q")
_DOUBLE: Final = struct.Struct("<d")
_FLAGS: Final = struct.Struct("<I")
_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))
_UNSET: Final = StatusCode.UNSET
_KIND_FIELD: Final = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (negative ints as two's complement)."""
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    value &= _U64
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag byte(s), varint length, payload."""
    return tag + varint(len(payload)) + payload


def any_value(value: object) -> bytes:
    """An encoded ``AnyValue`` message."""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, bool):  # before int: bool is an int subclass
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", key_value(k, v)) for k, v in value.items()))
    return _field(b"\x0a", str(value).encode("utf-8"))


def key_value(key: str, value: object) -> bytes:
    """An encoded ``KeyValue`` message."""
    return _field(b"\x0a", key.encode("utf-8")) + _field(b"\x12", any_value(value))


class SpanEncoder:
    """Encodes batches of compact spans; one per worker thread (its caches are not locked)."""

    def __init__(
        self,
        resource_defaults: Mapping[str, object] | None = None,
        resource_overrides: Mapping[str, object] | None = None,
    ) -> None:
        # Resource attributes every span gets unless its resource sets them
        # (deployment.environment.name when the host built the TracerProvider).
        self._resource_defaults = dict(resource_defaults or {})
        # Resource attributes that win over the span's resource: facts of the exporting
        # process (process.pid), which a resource built before a fork states wrongly.
        self._resource_overrides = dict(resource_overrides or {})
        self._attribute_fields: dict[tuple[bytes, str, type, object], bytes] = {}
        self._resources: dict[int, tuple[object, bytes]] = {}
        self._scopes: dict[int, tuple[object, bytes]] = {}
        # Span name field (5) per name; names repeat (one per operation).
        self._name_fields: dict[str, bytes] = {}
        # Trace id field (1) per trace id, for one request: spans of a trace travel together.
        self._trace_id_fields: dict[int, bytes] = {}

    def encode_request(self, spans: Iterable[CompactSpan]) -> bytes:
        """An encoded ``ExportTraceServiceRequest`` holding ``spans``."""
        grouped: dict[int, dict[int, list[bytes]]] = {}
        owners: dict[int, Any] = {}
        for record in spans:
            resource, scope = record[RESOURCE], record[SCOPE]
            by_scope = grouped.get(id(resource))
            if by_scope is None:
                by_scope = grouped[id(resource)] = {}
                owners[id(resource)] = resource
            encoded = by_scope.get(id(scope))
            if encoded is None:
                encoded = by_scope[id(scope)] = []
                owners[id(scope)] = scope
            encoded.append(self.encode_span(record))
        self._trace_id_fields.clear()
        out = []
        for resource_id, by_scope in grouped.items():
            scope_spans = b"".join(
                _field(
                    b"\x12",
                    self._scope_field(owners[scope_id])
                    + b"".join([b"\x12" + varint(len(s)) + s for s in encoded]),
                )
                for scope_id, encoded in by_scope.items()
            )
            out.append(_field(b"\x0a", self._resource_field(owners[resource_id]) + scope_spans))
        return b"".join(out)

    def encode_span(self, record: CompactSpan) -> bytes:
        """An encoded ``Span`` message (without its field tag)."""
        context = record[CONTEXT]
        parent = record[PARENT]
        attribute = self._attribute_field
        trace_id = context.trace_id
        trace_id_field = self._trace_id_fields.get(trace_id)
        if trace_id_field is None:
            trace_id_field = self._trace_id_fields[trace_id] = b"\x0a\x10" + trace_id.to_bytes(
                16, "big"
            )
        parts = [trace_id_field, b"\x12\x08", context.span_id.to_bytes(8, "big")]
        trace_state = context.trace_state
        if trace_state:
            parts.append(_field(b"\x1a", trace_state.to_header().encode("utf-8")))
        flags = context.trace_flags | _HAS_IS_REMOTE
        if parent is not None:
            parts.append(b"\x22\x08")
            parts.append(parent.span_id.to_bytes(8, "big"))
            if parent.is_remote:
                flags |= _IS_REMOTE
        name = record[NAME]
        name_field = self._name_fields.get(name)
        if name_field is None:
            name_field = _field(b"\x2a", name.encode("utf-8"))
            if len(self._name_fields) >= ATTRIBUTE_CACHE_SIZE:
                self._name_fields.clear()
            self._name_fields[name] = name_field
        parts.append(name_field)
        parts.append(_KIND_FIELD[record[KIND]])
        parts.append(_START_END.pack(0x39, record[START], 0x41, record[END] or record[START]))
        attributes = record[ATTRIBUTES]
        if attributes:
            for key, value in attributes.items():
                parts.append(attribute(key, value))
        journey = record[JOURNEY]
        if journey:
            for key, value in journey:
                parts.append(attribute(key, value))
        events = record[EVENTS]
        if events:
            for event in events:
                parts.append(_field(b"\x5a", self._event(event)))
        links = record[LINKS]
        if links:
            for link in links:
                parts.append(_field(b"\x6a", _link(link)))
        dropped = record[DROPPED]
        if dropped:
            for tag, count in zip((b"\x50", b"\x60", b"\x70"), dropped, strict=True):
                if count:
                    parts.append(tag + varint(count))
        status = record[STATUS]
        if status.status_code is not _UNSET:
            parts.append(_status_field(status.status_code, status.description))
        parts.append(b"\x85\x01")
        parts.append(_FLAGS.pack(flags))
        return b"".join(parts)

    def _attribute_field(self, key: str, value: object, tag: bytes = b"\x4a") -> bytes:
        """One ``KeyValue`` as field ``tag`` (span field 9 by default), cached: values repeat."""
        try:
            cache_key = (tag, key, value.__class__, value)
            found = self._attribute_fields.get(cache_key)
        except TypeError:  # an unhashable value: encode it every time
            return _field(tag, key_value(key, value))
        if found is None:
            found = _field(tag, key_value(key, value))
            if len(self._attribute_fields) >= ATTRIBUTE_CACHE_SIZE:
                self._attribute_fields.clear()
            self._attribute_fields[cache_key] = found
        return found

    def _event(self, event: Any) -> bytes:
        """An encoded ``Span.Event`` message."""
        parts = [b"\x09", _FIXED64.pack(event.timestamp), _field(b"\x12", event.name.encode())]
        for key, value in (event.attributes or {}).items():
            parts.append(self._attribute_field(key, value, b"\x1a"))
        dropped = event.dropped_attributes
        if dropped:
            parts.append(b"\x20" + varint(dropped))
        return b"".join(parts)

    def _resource_field(self, resource: Any) -> bytes:
        """ResourceSpans field 1; resources are immutable, so encoded once each."""
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        attributes = {
            **self._resource_defaults,
            **dict(resource.attributes),
            **self._resource_overrides,
        }
        body = b"".join(_field(b"\x0a", key_value(k, v)) for k, v in attributes.items())
        encoded = _field(b"\x0a", body)
        self._resources[id(resource)] = (resource, encoded)
        return encoded

    def _scope_field(self, scope: Any) -> bytes:
        """ScopeSpans field 1 (``InstrumentationScope``), encoded once per scope object."""
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]
        body = b""
        if scope is not None:
            body = _field(b"\x0a", scope.name.encode("utf-8"))
            if scope.version:
                body += _field(b"\x12", scope.version.encode("utf-8"))
            for key, value in (scope.attributes or {}).items():
                body += _field(b"\x1a", key_value(key, value))
        encoded = _field(b"\x0a", body)
        self._scopes[id(scope)] = (scope, encoded)
        return encoded


def _status_field(code: StatusCode, description: str | None) -> bytes:
    body = b""
    if description and code is StatusCode.ERROR:
        body = _field(b"\x12", description.encode("utf-8"))
    body += b"\x18" + varint(code.value)
    return _field(b"\x7a", body)


def _link(link: Any) -> bytes:
    context = link.context
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        parts.append(_field(b"\x1a", context.trace_state.to_header().encode("utf-8")))
    for key, value in (link.attributes or {}).items():
        parts.append(_field(b"\x22", key_value(key, value)))
    dropped = link.dropped_attributes
    if dropped:
        parts.append(b"\x28" + varint(dropped))
    flags = context.trace_flags | _HAS_IS_REMOTE | (_IS_REMOTE if context.is_remote else 0)
    parts.append(b"\x35" + _FLAGS.pack(flags))
    return b"".join(parts)
