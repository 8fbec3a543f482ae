"""Logs: ingest throughput, and the SDK's cost per record on the logging thread.

Run: ``PYTHONPATH=src:tests python bench/logs.py [--records 50000] [--calls 20000] [--rounds 5]
[--in-flight 32] [--ingest-rounds 3]``

1. Ingest: ``--records`` log records (each with a trace link, a session, three
   attributes and a 60-character body) in requests of 500, as protobuf, posted to a
   real server on 127.0.0.1 one request at a time; records stored per second, end to
   end (each answer waits for the commit). Decoding alone is timed too.
   Then the capacity: the same requests posted ``--in-flight`` at a time (senders in a
   process of their own, as ``ingest.py``'s) to ``threadline serve --workers 1`` in a
   process of its own, ``--ingest-rounds`` times on a new store each; each round's
   records/s and their median. One at a time measures the wait for each commit; many
   at once, what the server can take (requests share commits).
2. Caller cost: ``--calls`` ``logger.warning("... %s", n)`` calls inside a span,
   through (a) the stock OpenTelemetry ``LoggingHandler`` + ``BatchLogRecordProcessor``
   with an exporter that discards, and (b) Threadline's ``LogExportHandler``. Both
   queues are large enough to hold every record and both workers wait longer than a
   round, so only the logging thread's work is measured. Rounds alternate; the median
   per-call time and the ratio (Threadline ÷ stock; the goal is at most 0.5) are printed,
   with a bare ``logging.Handler`` that does nothing as the floor.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import TracerProvider

import ingest as span_ingest
from support.live_server import live_server
from threadline.demo.processes import free_port
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.transport import TransportConfig
from threadline.sdk.log_export.handler import LogExportHandler
from threadline.server.ingest.decode import PayloadFormat
from threadline.server.ingest.logs_decode import decode_logs

PER_REQUEST = 500
# Bound on one round of the capacity measure: its senders stop posting after this.
SEND_TIMEOUT_S = 120.0
_SPAWN = multiprocessing.get_context("spawn")


def request_body(first: int, count: int) -> bytes:
    message = ExportLogsServiceRequest()
    resource_logs = message.resource_logs.add()
    resource_logs.resource.attributes.add(
        key="service.name", value=AnyValue(string_value="payments")
    )
    scope = resource_logs.scope_logs.add()
    now = time.time_ns()
    for n in range(first, first + count):
        scope.log_records.add(
            time_unix_nano=now + n,
            observed_time_unix_nano=now + n,
            severity_number=13,
            severity_text="WARN",
            body=AnyValue(string_value=f"card declined for order {n:010d} after 3 retries ok"),
            trace_id=(n + 1).to_bytes(16, "big"),
            span_id=(n + 1).to_bytes(8, "big"),
            attributes=[
                KeyValue(key="session.id", value=AnyValue(string_value=f"s-{n % 97}")),
                KeyValue(key="order.id", value=AnyValue(int_value=n)),
                KeyValue(key="http.route", value=AnyValue(string_value="/charge")),
            ],
        )
    return message.SerializeToString()


def ingest(records: int) -> None:
    bodies = [request_body(i, PER_REQUEST) for i in range(0, records, PER_REQUEST)]
    started = time.perf_counter()
    for body in bodies:
        decode_logs(body, PayloadFormat.PROTOBUF, time.time_ns())
    decoded_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "logs.duckdb"
        with live_server(db) as server, httpx.Client(timeout=60) as client:
            headers = {"content-type": "application/x-protobuf"}
            started = time.perf_counter()
            for body in bodies:
                answer = client.post(server.logs_url, content=body, headers=headers)
                answer.raise_for_status()
            elapsed = time.perf_counter() - started
    print(f"ingest: {records} records in requests of {PER_REQUEST}")
    print(f"  decode alone     {records / decoded_s:12,.0f} records/s")
    print(f"  HTTP end to end  {records / elapsed:12,.0f} records/s (each answer after commit)")


def capacity(records: int, in_flight: int, rounds: int) -> None:
    """The requests posted ``in_flight`` at a time to ``threadline serve --workers 1``,
    ``rounds`` times, each on a new store; records stored per second."""
    bodies = [
        (index, request_body(first, PER_REQUEST), PER_REQUEST)
        for index, first in enumerate(range(0, records, PER_REQUEST))
    ]
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for round_ in range(rounds):
            port = free_port()
            server = span_ingest.start_server(Path(directory) / f"logs-{round_}.duckdb", port, 1)
            try:
                # A process of its own, so the senders' interpreter lock is not the server's.
                with ProcessPoolExecutor(max_workers=1, mp_context=_SPAWN) as sender:
                    stored, _, first, last, _, _ = sender.submit(
                        span_ingest.send,
                        f"http://127.0.0.1:{port}/v1/logs",
                        bodies,
                        False,
                        time.monotonic() + SEND_TIMEOUT_S,
                        in_flight,
                    ).result()
            finally:
                span_ingest.stop_server(server)
            if stored != records:
                raise RuntimeError(f"{stored} of {records} records acknowledged")
            rates.append(stored / (last - first))
    print(
        f"  HTTP capacity    {statistics.median(rates):12,.0f} records/s (median;"
        f" {in_flight} requests in flight, `threadline serve --workers 1`; rounds"
        f" {', '.join(f'{rate:,.0f}' for rate in rates)})"
    )


class _Discard(LogRecordExporter):
    def export(self, batch: Sequence[object]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def stock_handler(calls: int) -> tuple[logging.Handler, Callable[[], None]]:
    provider = LoggerProvider()
    provider.add_log_record_processor(
        BatchLogRecordProcessor(_Discard(), max_queue_size=calls * 2, schedule_delay_millis=600_000)
    )
    return LoggingHandler(level=logging.WARNING, logger_provider=provider), provider.shutdown


def threadline_handler(calls: int) -> tuple[logging.Handler, Callable[[], None]]:
    handler = LogExportHandler(
        TransportConfig(endpoint="http://127.0.0.1:9", timeout_s=0.1),
        level=logging.WARNING,
        queue_size=calls * 2,
        batch_size=calls * 4,  # never "full": the worker sleeps through the round
        delay_s=600.0,
        retry=RetryPolicy(deadline_s=0.1),
        shutdown_timeout_s=0.5,
        resource={"service.name": "bench"},
        pseudonymize_user_id=lambda user: user,
    )
    return handler, handler.stop


def floor_handler(calls: int) -> tuple[logging.Handler, Callable[[], None]]:
    class Nothing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            pass

    return Nothing(logging.WARNING), lambda: None


def per_call_us(
    make: Callable[[int], tuple[logging.Handler, Callable[[], None]]], calls: int
) -> float:
    handler, stop = make(calls)
    logger = logging.getLogger("bench.logs")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING)
    tracer = TracerProvider().get_tracer("bench")
    try:
        with tracer.start_as_current_span("request"):
            started = time.perf_counter()
            for n in range(calls):
                logger.warning("card declined for order %s", n)
            elapsed = time.perf_counter() - started
    finally:
        logger.handlers = []
        stop()
    return elapsed / calls * 1e6


def caller_cost(calls: int, rounds: int) -> None:
    variants = {"floor": floor_handler, "stock": stock_handler, "threadline": threadline_handler}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, make in variants.items():
            times[name].append(per_call_us(make, calls))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"caller cost: {calls} logger.warning calls in a span, median of {rounds} rounds")
    for name, value in medians.items():
        print(f"  {name:<11} {value:8.2f} µs/call")
    ratio = medians["threadline"] / medians["stock"]
    print(f"  threadline ÷ stock = {ratio:.2f} (goal ≤ 0.50)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--in-flight", type=int, default=32, help="requests posted at once for the capacity"
    )
    parser.add_argument(
        "--ingest-rounds", type=int, default=3, help="rounds of the capacity measure"
    )
    args = parser.parse_args(argv)
    if min(args.records, args.in_flight, args.ingest_rounds) < 1:
        parser.error("--records, --in-flight and --ingest-rounds must be at least 1")
    ingest(args.records)
    capacity(args.records, args.in_flight, args.ingest_rounds)
    caller_cost(args.calls, args.rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
