"""A wire-compatible twin of OTLP's ``ExportTraceServiceRequest`` that parses less.

The protobuf runtime (upb) parses a request in C in ~0.3 µs a span, but reading the
parsed message from Python costs far more: every attribute is a ``KeyValue`` wrapper,
an ``AnyValue`` wrapper, a ``WhichOneof`` and a field read. Most attributes repeat
from span to span (a route, a method, a host, a session), so the decoder remembers
each distinct attribute by its encoded bytes instead (``span_decoder``).

This module declares the same messages as ``opentelemetry/proto/trace/v1`` and the
trace collector service, field for field and number for number, except that a
span's ``attributes`` (field 9) are ``repeated bytes``: the parser hands over each
``KeyValue`` still encoded, which is exactly how a length-delimited embedded message
travels on the wire. Resources, scopes, events and links keep the original types.

Consequence: a malformed or non-UTF-8 span attribute is not found by this parse but
when that attribute is parsed (``KeyValue.FromString``); the decoder then runs the
stock parse so the error is the one the stock message gives.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_PACKAGE: Final = "threadline.server.ingest.wire"
_FILE: Final = "threadline/server/ingest/wire.proto"
_TRACE_PACKAGE: Final = "." + trace_pb2.DESCRIPTOR.package + "."
_SERVICE_PACKAGE: Final = "." + trace_service_pb2.DESCRIPTOR.package + "."
_SPAN_ATTRIBUTES_FIELD: Final = 9
# The messages copied into the twin; the others are used from their own files.
_TRACE_MESSAGES: Final = ("ResourceSpans", "ScopeSpans", "Span", "Status")


def _renamed(message: descriptor_pb2.DescriptorProto) -> None:
    """Point every reference to a copied message at the copy in this package."""
    for field in message.field:
        for package in (_TRACE_PACKAGE, _SERVICE_PACKAGE):
            if field.type_name.startswith(package):
                field.type_name = f".{_PACKAGE}." + field.type_name[len(package) :]
    for nested in message.nested_type:
        _renamed(nested)


def _file() -> descriptor_pb2.FileDescriptorProto:
    trace = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(trace)
    service = descriptor_pb2.FileDescriptorProto()
    trace_service_pb2.DESCRIPTOR.CopyToProto(service)
    twin = descriptor_pb2.FileDescriptorProto(
        name=_FILE,
        package=_PACKAGE,
        syntax=trace.syntax,
        dependency=[common_pb2.DESCRIPTOR.name, resource_pb2.DESCRIPTOR.name],
    )
    for message in trace.message_type:
        if message.name in _TRACE_MESSAGES:
            twin.message_type.add().CopyFrom(message)
    for message in service.message_type:
        if message.name == "ExportTraceServiceRequest":
            twin.message_type.add().CopyFrom(message)
    for message in twin.message_type:
        _renamed(message)
        if message.name == "Span":
            (attributes,) = (f for f in message.field if f.number == _SPAN_ATTRIBUTES_FIELD)
            attributes.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            attributes.ClearField("type_name")
    return twin


def _request_class() -> Any:
    pool = descriptor_pool.Default()
    name = f"{_PACKAGE}.ExportTraceServiceRequest"
    try:
        found = pool.FindMessageTypeByName(name)
    except KeyError:
        pool.Add(_file())
        found = pool.FindMessageTypeByName(name)
    return message_factory.GetMessageClass(found)


# ``ExportTraceServiceRequest`` whose spans hold their attributes still encoded.
RawAttributesRequest: Final[Any] = _request_class()
