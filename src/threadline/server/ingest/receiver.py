"""The OTLP/HTTP trace receiver: ``POST /v1/traces``.

The handler only translates HTTP to ingest and back (OTLP specification,
"OTLP/HTTP"):

1. ``Content-Type`` picks the decoder (binary protobuf or OTLP JSON), anything
   else is 415; ``Content-Encoding`` may be gzip or deflate, anything else is 415.
2. Before the body is read, the token's rate is charged by the declared size
   (429, see ``limits``) and the body's bytes are reserved in the ingest memory
   budget (503, see ``budget``).
3. The body is read with the size limit (413) and the body deadline (408), then
   decompressed in a worker thread; the decoding cost is reserved (503) and the
   rate charge raised to the inflated size, then it is decoded and validated in a
   worker thread, so a large payload does not stall the event loop. The charge is
   corrected to the spans found; a request refused from here on keeps its charge.
4. The batch is handed to the store and the answer waits until the store says it
   is durable: a 200 means the spans survive a crash. An empty request is a 200
   with nothing written.

A client that disconnects while sending its body is logged in one line.

Answers use the request's encoding and content type: ``ExportTraceServiceResponse``
on success, and for every 4xx/5xx a ``google.rpc.Status`` whose ``message`` says
what was wrong ("Failures"), with a ``BadRequest`` detail naming the invalid field
("Bad Data") and ``Retry-After`` on 503 ("OTLP/HTTP Throttling"). These bodies are
built here rather than by the app's generic error handler because OTLP clients
expect them in the protobuf or JSON shape they sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Final

from fastapi import APIRouter, Request, Response
from google.protobuf import duration_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from threadline.conventions import LOGS_PATH, TRACES_PATH
from threadline.server.batch import SpanBatch
from threadline.server.errors import (
    InvalidPayload,
    ThreadlineError,
    Unavailable,
    UnsupportedMediaType,
)
from threadline.server.ingest.body import (
    content_codings,
    declared_length,
    decompress,
    read_body,
)
from threadline.server.ingest.budget import COST_PER_BYTE, MemoryBudget, Reservation
from threadline.server.ingest.clock import FutureStarts, clamp_future_starts
from threadline.server.ingest.counters import IngestCounters
from threadline.server.ingest.decode import PayloadFormat
from threadline.server.ingest.limits import IngestLimits, RateLimiter, spans_for_bytes
from threadline.server.ingest.logs_decode import decode_logs
from threadline.server.ingest.redact import ingest_redactor
from threadline.server.ingest.workers import InProcessDecoding, SpanDecoding
from threadline.server.retention import parse_span_of_time
from threadline.server.storage.base import Store, StoreError, StoreOverloaded
from threadline.settings import ConfigError, ServerSettings

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when the store is behind: group commits take
# milliseconds, so a second is enough for the queue to drain without making
# exporters hold spans for long.
OVERLOADED_RETRY_AFTER_S: Final = 1
# A failed write is more likely a passing I/O problem than a bad batch (the batch
# was validated); answer 503 so the exporter retries instead of dropping spans.
STORE_FAILED_RETRY_AFTER_S: Final = 5

_FORMATS: Final = {f.content_type: f for f in PayloadFormat}

# google.rpc.Code for each status we answer with; OTLP clients do not act on it
# ("This specification does not use Status.code") but it helps troubleshooting.
_RPC_CODES: Final = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.OUT_OF_RANGE,
    415: code_pb2.UNIMPLEMENTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def _openapi_body(message: str) -> dict[str, object]:
    return {
        "requestBody": {
            "required": True,
            "description": f"An OTLP {message}; may be gzip or deflate encoded.",
            "content": {
                PayloadFormat.PROTOBUF.content_type: {
                    "schema": {"type": "string", "format": "binary"}
                },
                PayloadFormat.JSON.content_type: {"schema": {"type": "object"}},
            },
        }
    }


_OPENAPI_REQUEST_BODY: Final = _openapi_body("ExportTraceServiceRequest")
_OPENAPI_LOGS_BODY: Final = _openapi_body("ExportLogsServiceRequest")

# Called once a request's body is decoded, with how many items it held.
Decoded = Callable[[int], None]


def build_ingest_router(
    store: Store,
    settings: ServerSettings,
    after_write: Callable[[SpanBatch], None] | None = None,
    *,
    rate_key: Callable[[Request], str] | None = None,
    future_starts: FutureStarts | None = None,
    counters: IngestCounters | None = None,
    decoding: SpanDecoding | None = None,
) -> APIRouter:
    """The router serving ``POST /v1/traces`` into ``store``.

    ``after_write`` (tail sampling) is given each batch once it is durable.
    ``rate_key`` names who a request counts against for ``ingest_rate_per_token``
    (the access token's name); without it all requests share one rate.
    ``future_starts`` counts the spans moved back from the future (see ``clock``);
    ``counters`` every request by its answer, and the spans stored (``/metrics``).
    ``decoding`` decodes the trace requests (see ``workers``; its owner starts and
    closes it); None decodes in this process.
    Raises ``ConfigError`` naming a setting that does not parse.
    """
    limit = settings.max_request_bytes
    max_skew_ns = parse_span_of_time(settings.max_clock_skew, "max_clock_skew")
    clamped = future_starts if future_starts is not None else FutureStarts()
    counted = counters if counters is not None else IngestCounters()
    limits = IngestLimits.from_settings(settings)
    redactor = ingest_redactor(settings)
    decoder = decoding if decoding is not None else InProcessDecoding(settings)
    # Logs are decoded in this process whatever ``workers`` says, on the thread spans are
    # with one worker: a second decoding thread would contend for the interpreter lock
    # as the thread pool did (``workers.OneThread``).
    log_decoding = decoder.in_process
    limiter = (
        RateLimiter(settings.ingest_rate_per_token) if settings.ingest_rate_per_token else None
    )
    budget = MemoryBudget(settings.ingest_memory_bytes)
    body_timeout_s = settings.body_timeout_s
    if body_timeout_s <= 0:
        raise ConfigError(f"body_timeout_s must be more than 0, got {body_timeout_s}")
    router = APIRouter()

    async def receive(
        request: Request,
        accept: Callable[[bytes, PayloadFormat, int, Decoded], Awaitable[int]],
        success: Message,
    ) -> Response:
        """Steps 1-4 of the module docstring for one request; ``accept`` decodes,
        validates and stores the body (``run_in_threadpool`` for the CPU work) and
        returns how many items it stored, after charging them to the rate."""
        # Until the content type is known, errors are answered in JSON: it is
        # readable by whoever sent a type we do not speak.
        payload_format = PayloadFormat.JSON
        reservation: Reservation | None = None
        stored = 0
        try:
            payload_format = payload_format_of(request.headers.get("content-type"))
            codings = content_codings(request.headers.get("content-encoding"))
            declared = declared_length(request, limit)
            key = rate_key(request) if rate_key is not None else ""
            charged = spans_for_bytes(declared or 0)
            if limiter is not None:
                limiter.take(key, charged)
            reservation = budget.reserve(limit if declared is None else declared)
            received_ns = time.time_ns()
            body = await read_body(request, limit, body_timeout_s)
            if codings:
                ratio = limits.max_decompression_ratio
                body = await run_in_threadpool(decompress, body, codings, limit, ratio)
            reservation.grow_to(len(body) * COST_PER_BYTE[payload_format])
            if limiter is not None and spans_for_bytes(len(body)) > charged:
                limiter.charge(key, spans_for_bytes(len(body)) - charged)
                charged = spans_for_bytes(len(body))

            def decoded(items: int) -> None:
                # The body is no longer needed: its memory goes back to the budget,
                # and the charge is corrected to what it held.
                if reservation is not None:
                    reservation.release()
                if limiter is not None:
                    limiter.charge(key, items - charged)

            stored = await accept(body, payload_format, received_ns, decoded)
        except ThreadlineError as exc:
            logger.debug("rejected OTLP request: %s %s", exc.status_code, exc.message)
            counted.answered(exc.status_code)
            return error_response(exc, payload_format)
        except ClientDisconnect:
            # Nobody is left to answer; one line says what happened, no traceback.
            logger.warning(
                "an OTLP client disconnected before its request body arrived; nothing stored"
            )
            counted.answered(400)
            return Response(status_code=400)
        finally:
            if reservation is not None:
                reservation.release()
        counted.answered(200, stored)
        return _message_response(success, payload_format, 200)

    async def accept_spans(
        body: bytes, payload_format: PayloadFormat, received_ns: int, decoded: Decoded
    ) -> int:
        batch = await decoder.decode(body, payload_format)
        del body
        batch, moved = clamp_future_starts(batch, received_ns, max_skew_ns)
        if moved:
            clamped.add(moved)
        decoded(len(batch))
        if len(batch):
            await _write_durably(lambda: store.write(batch), len(batch), "spans")
            if after_write is not None:
                await run_in_threadpool(after_write, batch)
        return len(batch)

    async def accept_logs(
        body: bytes, payload_format: PayloadFormat, received_ns: int, decoded: Decoded
    ) -> int:
        logs = await log_decoding.run(
            decode_logs, body, payload_format, received_ns, limits, redactor
        )
        del body
        decoded(len(logs))
        if len(logs):
            await _write_durably(lambda: store.write_logs(logs), len(logs), "log records")
        # The ingest counters count spans: a log request counts as answered only.
        return 0

    @router.post(
        TRACES_PATH,
        summary="Receive spans over OTLP/HTTP (protobuf or JSON).",
        response_class=Response,
        openapi_extra=_OPENAPI_REQUEST_BODY,
    )
    async def export_traces(request: Request) -> Response:
        return await receive(request, accept_spans, ExportTraceServiceResponse())

    @router.post(
        LOGS_PATH,
        summary="Receive log records over OTLP/HTTP (protobuf or JSON).",
        response_class=Response,
        openapi_extra=_OPENAPI_LOGS_BODY,
    )
    async def export_logs(request: Request) -> Response:
        return await receive(request, accept_logs, ExportLogsServiceResponse())

    return router


def payload_format_of(content_type: str | None) -> PayloadFormat:
    """The OTLP encoding named by a ``Content-Type`` header (parameters ignored)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    payload_format = _FORMATS.get(media_type)
    if payload_format is None:
        if media_type:
            problem = f"Content-Type {media_type!r} is not supported"
        else:
            problem = "the Content-Type header is missing"
        raise UnsupportedMediaType(
            f"{problem}; send {PayloadFormat.PROTOBUF.content_type} "
            f"or {PayloadFormat.JSON.content_type}"
        )
    return payload_format


async def _write_durably(write: Callable[[], Future[None]], count: int, what: str) -> None:
    # ``write`` is called here so that a store refusing at once (overloaded, closed)
    # is answered like one that fails later.
    try:
        await asyncio.wrap_future(write())
    except StoreOverloaded as exc:
        raise Unavailable(
            f"the store has too many pending writes ({exc}); retry later",
            retry_after_s=OVERLOADED_RETRY_AFTER_S,
        ) from exc
    except StoreError as exc:
        logger.warning("store failed to write %d %s: %s", count, what, exc)
        raise Unavailable(
            f"the store could not write the {what} ({exc}); retry later",
            retry_after_s=STORE_FAILED_RETRY_AFTER_S,
        ) from exc


def success_response(payload_format: PayloadFormat) -> Response:
    """ "Full Success": an empty ``ExportTraceServiceResponse`` (partial_success unset)."""
    return _message_response(ExportTraceServiceResponse(), payload_format, 200)


def error_response(exc: ThreadlineError, payload_format: PayloadFormat) -> Response:
    """A ``google.rpc.Status`` carrying the error message, in the request's encoding."""
    status = status_pb2.Status(
        code=_RPC_CODES.get(exc.status_code, code_pb2.UNKNOWN), message=exc.message
    )
    if isinstance(exc, InvalidPayload):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field, description=exc.message
        )
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if isinstance(exc, Unavailable):
        delay = duration_pb2.Duration(seconds=exc.retry_after_s)
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return _message_response(status, payload_format, exc.status_code, exc.headers)


def _message_response(
    message: Message,
    payload_format: PayloadFormat,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Response:
    if payload_format is PayloadFormat.PROTOBUF:
        content = message.SerializeToString()
    else:
        content = json_format.MessageToJson(message, indent=None).encode()
    return Response(
        content, status_code=status_code, headers=headers, media_type=payload_format.content_type
    )
