"""gRPC client and server (sync and asyncio), unary and streaming, via the stock instrumentation.

``opentelemetry-instrumentation-grpc`` injects the current context into the call
metadata (so ``traceparent`` and the journey ``baggage`` ride along) and the server
interceptor extracts and attaches it, baggage included. Turning the instrumentation
on patches ``grpc.server`` and ``grpc.*_channel``, so it must happen before the
server or channel is created: ``threadline.instrument()`` at start-up does that.
"""

from __future__ import annotations

from threadline.sdk.guard import report_internal_error


def instrument_grpc() -> bool:
    """Turn on the gRPC client and server instrumentation; False when it is not installed."""
    try:
        from opentelemetry.instrumentation.grpc import (
            GrpcAioInstrumentorClient,
            GrpcAioInstrumentorServer,
            GrpcInstrumentorClient,
            GrpcInstrumentorServer,
        )
    except ImportError:
        return False
    try:
        for instrumentor in (
            GrpcInstrumentorClient(),  # type: ignore[no-untyped-call]
            GrpcInstrumentorServer(),  # type: ignore[no-untyped-call]
            GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
            GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
        ):
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
    except Exception:
        report_internal_error("instrumenting gRPC")
        return False
    return True
