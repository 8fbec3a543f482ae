"""gRPC unary and streaming calls carry trace and journey in metadata, client to server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdk.collector import CLIENT, SERVER, Collector
from support.missing import require_module

require_module("grpc")

METHODS = ("Unary", "ServerStream", "ClientStream", "Bidi")


def test_unary_and_streaming_calls_continue_the_trace(
    run_boundary_scenario: Callable[..., Any], collector: Collector
) -> None:
    """Every call shape gives a client span and, under it, a server span with the journey, and
    the handler sees the caller's journey."""
    output = run_boundary_scenario("grpc_boundaries")
    for method in METHODS:
        assert output["answers"][method], method
        assert all(a == {"session.id": "s-grpc"} for a in output["answers"][method]), method

    trace_id = output["trace_id"]
    spans = collector.wait_for(lambda got: sum(s.trace_id == trace_id for s in got) >= 9)
    in_trace = [s for s in spans if s.trace_id == trace_id]
    clients = {s.name: s for s in in_trace if s.kind == CLIENT}
    servers = {s.name: s for s in in_trace if s.kind == SERVER}
    for method in METHODS:
        name = f"/threadline.test.Echo/{method}"
        assert servers[name].parent_span_id == clients[name].span_id, method
        assert servers[name].attributes.get("rpc.system") == "grpc"
        assert servers[name].attributes.get("session.id") == "s-grpc"
        assert clients[name].attributes.get("session.id") == "s-grpc"
