"""Scenario: a gRPC server and client in one process, unary and streaming, with generic handlers.

Each handler answers with the journey it sees; prints {"trace_id", "answers"} as JSON.
"""

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry import trace

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="grpc-boundaries")
threadline.instrument()  # before grpc.server() and grpc.insecure_channel(): they are patched

SERVICE = "threadline.test.Echo"


def seen() -> bytes:
    return json.dumps(current_journey()).encode()


def unary(request: bytes, context: Any) -> bytes:
    return seen()


def server_stream(request: bytes, context: Any) -> Iterator[bytes]:
    yield seen()
    yield seen()


def client_stream(requests: Iterator[bytes], context: Any) -> bytes:
    for _ in requests:
        pass
    return seen()


def bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    for _ in requests:
        yield seen()


def identity(value: bytes) -> bytes:
    return value


handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, identity, identity),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, identity, identity),
    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, identity, identity),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi, identity, identity),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()

answers: dict[str, list[Any]] = {}
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    method = f"/{SERVICE}/"
    options = {"request_serializer": identity, "response_deserializer": identity}
    with (
        threadline.journey(session_id="s-grpc"),
        trace.get_tracer("scenario").start_as_current_span("caller") as caller,
    ):
        answers["Unary"] = [channel.unary_unary(method + "Unary", **options)(b"x", timeout=10)]
        answers["ServerStream"] = list(
            channel.unary_stream(method + "ServerStream", **options)(b"x", timeout=10)
        )
        answers["ClientStream"] = [
            channel.stream_unary(method + "ClientStream", **options)(iter([b"a", b"b"]), timeout=10)
        ]
        answers["Bidi"] = list(
            channel.stream_stream(method + "Bidi", **options)(iter([b"a", b"b"]), timeout=10)
        )
server.stop(grace=1)
print(
    json.dumps(
        {
            "trace_id": f"{caller.get_span_context().trace_id:032x}",
            "answers": {k: [json.loads(v) for v in vs] for k, vs in answers.items()},
        }
    ),
    flush=True,
)
threadline.shutdown()
