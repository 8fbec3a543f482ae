"""Real servers with access tokens on free loopback ports, and spans to put in them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

STARTUP_TIMEOUT_S: Final = 10.0
SHUTDOWN_TIMEOUT_S: Final = 10.0

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


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    app: FastAPI
    store: DuckDBStore


@contextmanager
def serve(db: Path, **overrides: Any) -> Iterator[Served]:
    """``create_app`` over a DuckDB file, served by uvicorn until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: uvicorn given a socket does not set it, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = ServerSettings(host="127.0.0.1", port=port, db=db, **overrides)
    store = DuckDBStore(db)
    app = create_app(settings, store)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield Served(f"http://127.0.0.1:{port}", app, store)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        sock.close()
        store.close()


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
