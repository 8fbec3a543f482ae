"""OTLP JSON: parse a JSON ``ExportTraceServiceRequest`` into the protobuf message.

OTLP JSON is protobuf's JSON mapping with deviations (OTLP specification,
"JSON Protobuf Encoding"): keys are lowerCamelCase, unknown fields MUST be
ignored, enums are integers, 64-bit integers may be strings or numbers, and
``traceId`` / ``spanId`` / ``parentSpanId`` (in spans and links) are
case-insensitive *hex* strings rather than base64. This module rewrites those ids
to base64 and then builds the same message a protobuf request is, so both
encodings share one conversion to columns.

``json_format.ParseDict`` is the reference parser but costs ~150 µs per span
(it is pure Python, field by field). A document made only of the plain shapes
OTLP senders produce (objects, lists, strings, integer enums, 64-bit integers as
decimal strings or numbers, finite doubles, base64 bytes) is instead converted to
keyword arguments and built by the protobuf runtime in C, ~4x faster. Anything
else, including every error, goes through ParseDict, so results and error
messages are always ParseDict's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from google.protobuf import json_format
from google.protobuf import message as protobuf_message
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.server.errors import BadRequest, InvalidPayload

# ParseDict prefixes one "Failed to parse X field: " per nesting level; the cause is
# at the end, so a long message keeps its start and its end.
_MESSAGE_HEAD_CHARS: Final = 120
_MESSAGE_TAIL_CHARS: Final = 280

# Field names as OTLP JSON spells them, and as protobuf's JSON parser also accepts.
_SPAN_ID_FIELDS: Final = (
    "traceId",
    "spanId",
    "parentSpanId",
    "trace_id",
    "span_id",
    "parent_span_id",
)
_LINK_ID_FIELDS: Final = ("traceId", "spanId", "trace_id", "span_id")


def parse_export_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP JSON body; anything that is not one is a 400 saying why."""
    return parse_message(body, ExportTraceServiceRequest, _hex_ids_to_base64)


_M = TypeVar("_M", bound=protobuf_message.Message)


def parse_message(
    body: bytes, message_type: type[_M], rewrite_ids: Callable[[dict[str, Any]], None]
) -> _M:
    """Parse an OTLP JSON body into ``message_type``; ``rewrite_ids`` turns its hex ids
    into base64 in place first. Anything that is not such a message is a 400 saying why."""
    descriptor: Descriptor = message_type.DESCRIPTOR  # type: ignore[assignment]
    name = descriptor.name
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and bodies that are not UTF-8/16/32.
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest(f"body must be a JSON object (an {name})")
    rewrite_ids(document)
    try:
        return message_type(**_plain_message(document, descriptor))
    except (_NotPlain, ValueError, TypeError, RecursionError, protobuf_message.Error):
        pass  # ParseDict decides, and words the error if there is one.
    request = message_type()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid OTLP JSON {name}: {_shortened(str(exc))}") from exc
    return request


class _NotPlain(Exception):
    """The document has a shape the fast conversion leaves to ParseDict."""


_DECIMAL: Final = re.compile(r"-?[0-9]+")
_INTEGER_TYPES: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


@functools.cache
def _fields_by_json_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    # ParseDict accepts both the lowerCamelCase JSON name and the proto field name.
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.json_name] = field
        fields[field.name] = field
    return fields


def _plain_message(document: object, descriptor: Descriptor) -> dict[str, Any]:
    """Keyword arguments building ``descriptor``'s message from a plain JSON object."""
    if type(document) is not dict:
        raise _NotPlain
    fields = _fields_by_json_key(descriptor)
    arguments: dict[str, Any] = {}
    oneofs: set[str] = set()
    for key, value in document.items():
        field = fields.get(key)
        if field is None or value is None:
            continue  # unknown fields are ignored; null means "not set"
        if field.name in arguments:
            raise _NotPlain  # both spellings of one field
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                raise _NotPlain  # two members of one oneof
            oneofs.add(oneof.name)
        if field.is_repeated:
            if type(value) is not list:
                raise _NotPlain
            arguments[field.name] = [_plain_value(item, field) for item in value]
        else:
            arguments[field.name] = _plain_value(value, field)
    return arguments


def _plain_value(value: object, field: FieldDescriptor) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        return _plain_message(value, field.message_type)
    if kind == FieldDescriptor.TYPE_STRING and type(value) is str:
        return value
    if kind in _INTEGER_TYPES or kind == FieldDescriptor.TYPE_ENUM:
        if type(value) is int:
            return value
        if kind != FieldDescriptor.TYPE_ENUM and type(value) is str and _DECIMAL.fullmatch(value):
            return int(value)
    elif kind == FieldDescriptor.TYPE_BOOL and type(value) is bool:
        return value
    elif kind == FieldDescriptor.TYPE_DOUBLE and type(value) in (int, float):
        # ParseDict refuses the infinities Python's json reads from "Infinity"
        # literals; leaving non-finite numbers to it keeps its answer.
        number = float(value)  # type: ignore[arg-type]
        if math.isfinite(number):
            return number
    elif kind == FieldDescriptor.TYPE_BYTES and type(value) is str:
        return base64.b64decode(value, validate=True)
    raise _NotPlain


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite span and link ids in place; leave shapes it does not expect to ParseDict.

    A value of the wrong type (a list where an object belongs, say) is not
    reported here: ParseDict rejects it with a message naming the field.
    """
    for r, resource_spans in items(document, "resourceSpans", "resource_spans"):
        for s, scope_spans in items(resource_spans, "scopeSpans", "scope_spans"):
            for k, span in items(scope_spans, "spans"):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{k}]"
                _rewrite(span, _SPAN_ID_FIELDS, where)
                for n, link in items(span, "links"):
                    _rewrite(link, _LINK_ID_FIELDS, f"{where}.links[{n}]")


def items(parent: object, *keys: str) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(parent, dict):
        return []
    for key in keys:
        children = parent.get(key)
        if isinstance(children, list):
            return [(i, child) for i, child in enumerate(children) if isinstance(child, dict)]
    return []


def _rewrite(message: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    for field in fields:
        value = message.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidPayload(
                f"{where}.{field}", f"must be a hex string, got {type(value).__name__}"
            )
        message[field] = _hex_to_base64(value, f"{where}.{field}")


def _hex_to_base64(text: str, where: str) -> str:
    # unhexlify rejects odd lengths and non-hex digits; the alnum check also keeps
    # out the spaces that bytes.fromhex would tolerate. An empty id stays empty
    # and is judged by the span validation (an empty parentSpanId marks a root).
    if text and text.isascii() and text.isalnum():
        try:
            return base64.b64encode(binascii.unhexlify(text)).decode("ascii")
        except binascii.Error:
            pass
    elif not text:
        return text
    raise InvalidPayload(where, f"must be a hex string, got {text[:64]!r}")


def _shortened(message: str) -> str:
    if len(message) <= _MESSAGE_HEAD_CHARS + _MESSAGE_TAIL_CHARS:
        return message
    return f"{message[:_MESSAGE_HEAD_CHARS]} … {message[-_MESSAGE_TAIL_CHARS:]}"
