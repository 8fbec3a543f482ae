"""A test-only OTLP/HTTP collector: decodes ``ExportTraceServiceRequest`` bodies and keeps the
spans.

It is deliberately independent of ``threadline.server``: the SDK is tested against the
OTLP wire format, the only thing the two halves share.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from support.threaded_http import serving_in_thread

SERVER: Final = SpanProto.SpanKind.SPAN_KIND_SERVER
CLIENT: Final = SpanProto.SpanKind.SPAN_KIND_CLIENT
INTERNAL: Final = SpanProto.SpanKind.SPAN_KIND_INTERNAL

WAIT_STEP_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class CollectedSpan:
    service: str
    scope: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, object]
    resource: dict[str, object] = field(default_factory=dict)


class Collector:
    """Spans received so far, and a bounded wait for the ones a test expects."""

    def __init__(self, port: int) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        self._spans: list[CollectedSpan] = []
        self._lock = threading.Lock()
        self._refuse_named: dict[str, int] = {}

    @property
    def spans(self) -> list[CollectedSpan]:
        with self._lock:
            return list(self._spans)

    def refuse(self, span_name: str, times: int) -> None:
        """Answer 503 to the next ``times`` requests that carry a span named ``span_name``
        (a backend failing for a while), keeping nothing of them."""
        with self._lock:
            self._refuse_named[span_name] = times

    def add(self, request: ExportTraceServiceRequest) -> bool:
        """Keep the request's spans; False (nothing kept) when it is to be refused."""
        received = list(_spans_of(request))
        with self._lock:
            for name in {span.name for span in received}:
                if self._refuse_named.get(name, 0) > 0:
                    self._refuse_named[name] -= 1
                    return False
            self._spans.extend(received)
            return True

    def in_trace(self, trace_id: str) -> list[CollectedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(
        self, ready: Callable[[list[CollectedSpan]], bool], timeout_s: float = 10.0
    ) -> list[CollectedSpan]:
        """Spans once ``ready(spans)`` holds; fails the test when it does not within the time."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / WAIT_STEP_S) + 1):
            spans = self.spans
            if ready(spans) or time.monotonic() > deadline:
                break
            time.sleep(WAIT_STEP_S)
        assert ready(spans), f"collector did not receive the expected spans; got {spans}"
        return spans


@contextmanager
def running_collector() -> Iterator[Collector]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    collector = Collector(server.server_address[1])
    server.collector = collector  # type: ignore[attr-defined]
    with serving_in_thread(server, name="otlp-collector"):
        yield collector


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        if not self.server.collector.add(request):  # type: ignore[attr-defined]
            self.send_error(503)
            return
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


def _spans_of(request: ExportTraceServiceRequest) -> Iterator[CollectedSpan]:
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield CollectedSpan(
                    service=service,
                    scope=scope_spans.scope.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=span.kind,
                    attributes={a.key: _value(a.value) for a in span.attributes},
                    resource=resource,
                )


def _value(value: AnyValue) -> object:
    field = value.WhichOneof("value")
    if field == "array_value":
        return [_value(v) for v in value.array_value.values]
    if field == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, field) if field else None
