"""Access tokens for the servers of these tests, and spans to put in them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ADMIN_TOKEN: Final = "admin-token-0123456789abcdef"
VIEWER_TOKEN: Final = "viewer-token-0123456789abcdef"
INGEST_TOKEN: Final = "ingest-token-0123456789abcdef"
OTHER_INGEST_TOKEN: Final = "ingest-token-two-0123456789abcdef"
WRONG_TOKEN: Final = "not-a-token-anyone-was-given"
TOKENS: Final = ",".join(
    (
        f"admin:{ADMIN_TOKEN}",
        f"viewer:{VIEWER_TOKEN}",
        f"ingest:{INGEST_TOKEN}",
        f"ingest:{OTHER_INGEST_TOKEN}",
    )
)

PROTOBUF: Final = "application/x-protobuf"


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span_request(
    trace_hex: str,
    *,
    attributes: Mapping[str, str] | None = None,
    start_ns: int | None = None,
    service: str = "checkout",
    spans: int = 1,
) -> ExportTraceServiceRequest:
    """One trace of ``spans`` spans (a root and its children) with ``attributes`` on each."""
    start = time.time_ns() if start_ns is None else start_ns
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attribute("service.name", service))
    scope = resource_spans.scope_spans.add()
    for n in range(spans):
        span = scope.spans.add(
            trace_id=bytes.fromhex(trace_hex),
            span_id=(n + 1).to_bytes(8, "big"),
            parent_span_id=b"" if n == 0 else (1).to_bytes(8, "big"),
            name="POST /checkout" if n == 0 else f"step {n}",
            kind=2 if n == 0 else 1,
            start_time_unix_nano=start + n * 1000,
            end_time_unix_nano=start + 1_000_000,
        )
        for key, value in (attributes or {}).items():
            span.attributes.append(attribute(key, value))
    return request
