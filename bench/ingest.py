"""Ingest throughput: decoding (before/after), the store alone, and OTLP/HTTP end to end.

    PYTHONPATH=src python bench/ingest.py --spans 40000 --rounds 2

Generates realistic OTLP protobuf requests (a few services per request, 20 spans
per trace, 500 spans per request, ~10 attributes per span), then in one run
measures, on this machine:

  (b) the CPU time per span of decoding, the decoder before (``decode.decode``, kept
      as the reference) against the server's (``SpanDecoder``), in alternating rounds,
      with the server's default redaction and without; each round decodes requests
      the server's decoder has not met (it remembers attributes: it is warmed on
      others first, as a running server is), and the last round's again; OTLP JSON
      on a sample;
  (a) spans/s appended straight to a DuckDBStore from pre-decoded batches;
  (c) spans/s end to end for each ``--workers`` value: a server started the way
      ``threadline serve`` starts (``server.runner.serve``) in its own process, and
      ``--senders`` sender processes of ``--threads`` clients each POSTing the
      pre-encoded bodies over kept-alive connections (``http.client``: the
      senders share the server's cores, and httpx took several times its CPU per
      request), each request answered only once durable;
      every acknowledged span is checked stored. Each setting runs at each
      ``--threads`` value: a sender waits for each answer, so the spans in flight
      bound the rate (a group commit holds what arrived while the last one ran), and
      a setting's capacity is its best rate over the loads offered.

and prints each setting's capacity and the ratios: decode after/before, end to end N
workers / 1 worker, and (c)/(a). Each end-to-end phase also prints where the CPU
went: the server process (HTTP, the writer's commits and, with one worker, decoding)
and its decoding workers in cores, and how busy the whole machine was (the senders run
on it too): a phase whose machine is not busy was held back by waiting (commits,
answers), not by CPU.
``--duckdb-threads N`` gives the store that many DuckDB threads (the server's
``duckdb_threads`` setting), in (a) and (c).
``--without-rollups`` runs each setting again against a store keeping no rollups and
prints what the rollups cost end to end (the ratio of the two rates).
The store checkpoints once its write-ahead log holds 256 MB (about 350,000 spans with
rollups), and not within a phase that writes less: to measure the checkpoints' share
too, give ``--spans 600000`` or more (``docs/performance.md``, "Checkpoints out of the
writer's way").
The load average is printed with the figures: on a shared machine other work takes
cores from the workers. Everything runs on 127.0.0.1, every phase is
bounded by ``--phase-timeout`` and the server process is stopped in all cases.
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from threadline.demo.processes import free_port
from threadline.server.batch import SpanBatch
from threadline.server.ingest.decode import PayloadFormat, decode
from threadline.server.ingest.limits import DEFAULT_LIMITS
from threadline.server.ingest.redact import IngestRedactor, ingest_redactor
from threadline.server.ingest.span_decoder import SpanDecoder
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

SERVICES: Final = ("frontend", "checkout", "payments", "inventory", "shipping")
ROUTES: Final = ("/cart/{id}", "/checkout", "/pay", "/items/{sku}", "/ship/{order}")
# Batches in flight in the direct phase: enough to keep group commits full, well
# under the store's pending bound so the phase never sees StoreOverloaded.
DIRECT_IN_FLIGHT: Final = 64
JSON_SAMPLE_REQUESTS: Final = 10
SERVER_START_TIMEOUT_S: Final = 30.0
SERVER_STOP_TIMEOUT_S: Final = 60.0
# Each phase stops at this many seconds (the run reports what it managed).
DEFAULT_PHASE_TIMEOUT_S: Final = 60.0
# Spans decoded per round of the before/after comparison, and rounds: enough to
# take a median on a loaded machine, a few seconds in all. The warm-up reads as many
# spans as a round, and every round new ones.
DECODE_SAMPLE_SPANS: Final = 20_000
DECODE_ROUNDS: Final = 5
# The decoding rounds' requests come from another seed than the end-to-end ones.
DECODE_SEED: Final = 11
# How many times a sender retries a request answered 503 before giving up on it.
SENDER_ATTEMPTS: Final = 20


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _int(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def make_requests(
    total_spans: int, spans_per_request: int, spans_per_trace: int, seed: int = 7
) -> list[bytes]:
    """Serialized ExportTraceServiceRequests shaped like a Python service fleet's."""
    rng = random.Random(seed)
    start = time.time_ns() - 3600 * 10**9
    requests: list[bytes] = []
    made = 0
    while made < total_spans:
        request = ExportTraceServiceRequest()
        by_service: dict[str, trace_pb2.ScopeSpans] = {}
        count = min(spans_per_request, total_spans - made)
        for t in range(0, count, spans_per_trace):
            trace_id = rng.randbytes(16)
            session = f"session-{rng.randrange(10_000)}"
            user = f"user-{rng.randrange(2_000)}"
            span_ids = [rng.randbytes(8) for _ in range(min(spans_per_trace, count - t))]
            trace_start = start + made * 1_000_000
            for i, span_id in enumerate(span_ids):
                service = SERVICES[i % len(SERVICES)]
                scope = by_service.get(service)
                if scope is None:
                    resource_spans = request.resource_spans.add()
                    resource_spans.resource.attributes.extend(
                        [
                            _string("service.name", service),
                            _string("service.version", "1.4.2"),
                            _string("deployment.environment", "production"),
                            _string("telemetry.sdk.language", "python"),
                        ]
                    )
                    scope = resource_spans.scope_spans.add()
                    scope.scope.name = "opentelemetry.instrumentation.flask"
                    by_service[service] = scope
                route = ROUTES[i % len(ROUTES)]
                begin = trace_start + i * 50_000
                span = scope.spans.add(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=span_ids[i - 1] if i else b"",
                    name=f"GET {route}",
                    kind=trace_pb2.Span.SPAN_KIND_SERVER
                    if i % 2
                    else trace_pb2.Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=begin,
                    end_time_unix_nano=begin + rng.randrange(100_000, 50_000_000),
                )
                span.attributes.extend(
                    [
                        _string("http.request.method", "GET"),
                        _string("http.route", route),
                        _int("http.response.status_code", 500 if rng.random() < 0.02 else 200),
                        _string("url.path", route.replace("{id}", str(rng.randrange(10**6)))),
                        _string("server.address", f"{service}.internal"),
                        _int("server.port", 8080),
                        _string("network.protocol.version", "1.1"),
                        _string("user_agent.original", "python-requests/2.32"),
                        _string("session.id", session),
                        _string("user.id", user),
                    ]
                )
                if rng.random() < 0.02:
                    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                    span.status.message = "upstream returned 500"
                    span.events.add(
                        name="exception",
                        time_unix_nano=begin + 1000,
                        attributes=[_string("exception.type", "HTTPError")],
                    )
        made += count
        requests.append(request.SerializeToString())
    return requests


def to_otlp_json(body: bytes) -> bytes:
    """A protobuf request as OTLP JSON (hex ids, integer enums)."""
    request = ExportTraceServiceRequest.FromString(body)
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(document).encode()


def span_keys(body: bytes) -> set[tuple[str, str]]:
    """The (trace id, span id) of every span of a serialized request, as stored (hex)."""
    request = ExportTraceServiceRequest.FromString(body)
    return {
        (span.trace_id.hex(), span.span_id.hex())
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }


def check_stored(db: Path, sent: Sequence[set[tuple[str, str]]], acknowledged: set[int]) -> None:
    """Count the stored spans by id against the requests sent (``acknowledged`` indexes).

    A total row count cannot tell a span stored twice from a span this run never sent
    (another process on the machine posting to a port this server reuses): the spans
    of the run's own traces are counted by id, and rows of other traces apart. A span
    stored twice or an acknowledged span missing fails the run.
    """
    store = DuckDBStore(db)
    try:
        total = store.counts().spans
        traces = sorted({trace for keys in sent for trace, _ in keys})
        stored = collections.Counter((s.trace_id, s.span_id) for s in store.get_traces(traces))
    finally:
        store.close()
    ours = set().union(*sent)
    expected = set().union(*(sent[n] for n in acknowledged))
    twice = {key: n for key, n in stored.items() if n > 1}
    missing = expected - stored.keys()
    if twice or missing:
        raise RuntimeError(
            f"HTTP phase: {len(missing)} acknowledged spans missing, {len(twice)} stored more "
            f"than once (e.g. {sorted(twice)[:3]})"
        )
    unacknowledged = (stored.keys() & ours) - expected
    foreign = total - sum(stored.values())
    if unacknowledged or foreign:
        print(
            f"    note: {len(expected)} spans acknowledged and stored once each; also stored: "
            f"{len(unacknowledged)} of requests not acknowledged, {foreign} not sent by this run"
        )


def cpu_per_span(decode_one: Callable[[bytes], object], bodies: Sequence[bytes]) -> float:
    """CPU seconds per span of decoding every body once (this process's CPU time)."""
    started = time.process_time()
    spans = 0
    for body in bodies:
        spans += len(decode_one(body))  # type: ignore[arg-type]
    return (time.process_time() - started) / spans


def compare_decoders(
    warm_up: Sequence[bytes], rounds: Sequence[Sequence[bytes]], redactor: IngestRedactor | None
) -> tuple[float, float, list[float], float]:
    """Median CPU µs/span before (``decode``) and after (``SpanDecoder``), each round's
    after/before ratio, and the after figure of the last round's requests decoded again.

    ``SpanDecoder`` remembers the attributes it has met, so it is warmed on ``warm_up``
    (a server that has been running) and each round decodes requests it has not met:
    their new ids (paths, sessions) are learned as a server learns them. The second pass
    over the last round, with every attribute met before, is what this bench printed as
    "after" before it decoded new requests. Rounds alternate so load changes hit both alike.
    """
    # The tables must be the same, or the comparison means nothing; checked with a
    # decoder of its own, so the measured one meets the measured requests only once.
    checker = SpanDecoder(DEFAULT_LIMITS, redactor)
    for body in [*warm_up, *(body for bodies in rounds for body in bodies)]:
        stock = decode(body, PayloadFormat.PROTOBUF, DEFAULT_LIMITS, redactor)
        if not stock.table.equals(checker.decode(body, PayloadFormat.PROTOBUF).table):
            raise RuntimeError("the decoders disagree on a benchmark request")
    decoder = SpanDecoder(DEFAULT_LIMITS, redactor)

    def before(body: bytes) -> object:
        return decode(body, PayloadFormat.PROTOBUF, DEFAULT_LIMITS, redactor)

    def after(body: bytes) -> object:
        return decoder.decode(body, PayloadFormat.PROTOBUF)

    for body in warm_up:
        after(body)
    olds, news, ratios = [], [], []
    for bodies in rounds:
        old = cpu_per_span(before, bodies)
        new = cpu_per_span(after, bodies)
        olds.append(old)
        news.append(new)
        ratios.append(new / old)
    again = cpu_per_span(after, rounds[-1])
    return statistics.median(olds) * 1e6, statistics.median(news) * 1e6, ratios, again * 1e6


def measure_direct(
    batches: Sequence[SpanBatch], db: Path, deadline: float, *, duckdb_threads: int = 0
) -> tuple[int, float]:
    """Append every batch through ``DuckDBStore.write``; time until all are durable."""
    store = DuckDBStore(db, threads=duckdb_threads)
    try:
        in_flight: collections.deque[Future[None]] = collections.deque()
        written = 0
        started = time.perf_counter()
        for batch in batches:
            if len(in_flight) >= DIRECT_IN_FLIGHT:
                in_flight.popleft().result(timeout=max(deadline - time.monotonic(), 1))
            in_flight.append(store.write(batch))
            written += len(batch)
            if time.monotonic() > deadline:
                break
        for future in in_flight:
            future.result(timeout=max(deadline - time.monotonic(), 1))
        elapsed = time.perf_counter() - started
        if store.counts().spans != written:
            raise RuntimeError(f"direct phase stored {store.counts().spans} of {written} spans")
        return written, elapsed
    finally:
        store.close()


# Prepended to the server's code by ``--without-rollups``: the stores it opens keep no
# rollups (ingest only inserts spans), as ``analysis.py``'s baseline store.
_NO_ROLLUPS: Final = (
    "import threadline.server.storage.duckdb.store as duckdb_store\n"
    "_init = duckdb_store.DuckDBStore.__init__\n"
    "def _plain(self, *args, **kwargs):\n"
    "    _init(self, *args, **{**kwargs, 'rollups': False})\n"
    "duckdb_store.DuckDBStore.__init__ = _plain\n"
)


def start_server(
    db: Path, port: int, workers: int, *, rollups: bool = True, duckdb_threads: int = 0
) -> subprocess.Popen[bytes]:
    """``threadline serve`` as a process: the runner with settings for this port and file
    (``rollups`` False: its store keeps none; ``duckdb_threads``: its setting)."""
    code = ("" if rollups else _NO_ROLLUPS) + (
        "from pathlib import Path\n"
        "from threadline.server.runner import serve\n"
        "from threadline.settings import ServerSettings\n"
        f"serve(ServerSettings(host='127.0.0.1', port={port}, db=Path({str(db)!r}), "
        f"workers={workers}, duckdb_threads={duckdb_threads}))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    stop_server(process)
    raise RuntimeError("server did not start listening in time")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn stops, the runner closes the store
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def send(
    url: str,
    bodies: Sequence[tuple[int, bytes, int]],
    gzip_bodies: bool,
    deadline: float,
    threads: int = 1,
) -> tuple[int, int, float, float, list[int], float]:
    """One sender process: ``threads`` clients POST the (index, body, spans) triples,
    retrying 503s as exporters do. Returns (spans acknowledged, 503s, wall time of the
    first POST, of the last answer, indexes of the requests acknowledged, CPU seconds
    the process used)."""
    headers = {"content-type": PayloadFormat.PROTOBUF.content_type}
    if gzip_bodies:
        headers["content-encoding"] = "gzip"
    pending = collections.deque(bodies)
    totals = [0, 0]
    acknowledged: list[int] = []
    lock = threading.Lock()

    target = urllib.parse.urlsplit(url)

    def client_loop() -> None:
        ok = refused = 0
        # The standard library's client: the senders run on the server's cores, and
        # httpx took several times its CPU per request.
        client = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            while time.monotonic() < deadline:
                try:
                    index, body, spans = pending.popleft()
                except IndexError:
                    break
                for _attempt in range(SENDER_ATTEMPTS):
                    try:
                        client.request("POST", target.path, body=body, headers=headers)
                        response = client.getresponse()
                        answer = response.read()  # read whole: the connection is reused
                    except (http.client.HTTPException, ConnectionError):
                        # The server closed a kept-alive connection: the next attempt
                        # opens a new one (a span stored twice is kept once).
                        client.close()
                        refused += 1
                        continue
                    if response.status == 200:
                        ok += spans
                        with lock:
                            acknowledged.append(index)
                        break
                    refused += 1
                    if response.status != 503:
                        raise RuntimeError(
                            f"server answered {response.status}: {answer.decode(errors='replace')}"
                        )
                    time.sleep(float(response.getheader("retry-after") or "1"))
        finally:
            client.close()
        with lock:
            totals[0] += ok
            totals[1] += refused

    first, cpu_s = time.time(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as clients:
        for done in [clients.submit(client_loop) for _ in range(threads)]:
            done.result()
    return totals[0], totals[1], first, time.time(), acknowledged, time.process_time() - cpu_s


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used over a phase: by the server process (HTTP, writer and, with one
    worker, decoding), by its decoding workers, by the sender processes, and the share
    of the whole machine busy."""

    server_s: float
    workers_s: float
    machine_busy: float  # share of every core's time not idle
    senders_s: float

    @staticmethod
    def between(before: CpuSample, after: CpuSample, senders_s: float) -> CpuUse:
        """The use from two samples of the server and the machine; ``senders_s``: what
        the sender processes measured of their own."""
        idle = after.idle_ticks - before.idle_ticks
        total = after.total_ticks - before.total_ticks
        return CpuUse(
            server_s=after.server_s - before.server_s,
            workers_s=after.workers_s - before.workers_s,
            machine_busy=1 - idle / total if total else 0.0,
            senders_s=senders_s,
        )

    def described(self, elapsed_s: float, spans: int) -> str:
        return (
            f"server CPU {(self.server_s + self.workers_s) / spans * 1e6:.1f} µs/span: "
            f"server process {self.server_s / elapsed_s:.2f} cores, decoding workers "
            f"{self.workers_s / elapsed_s:.2f}, senders {self.senders_s / elapsed_s:.2f}; "
            f"machine {self.machine_busy:.0%} busy"
        )


@dataclass(frozen=True)
class CpuSample:
    server_s: float
    workers_s: float
    idle_ticks: int
    total_ticks: int

    @staticmethod
    def now(pid: int) -> CpuSample:
        server_s, workers_s = process_cpu_s(pid)
        # /proc/stat's first line: the ticks of all cores in each state; idle and
        # iowait are the 4th and 5th.
        ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return CpuSample(server_s, workers_s, ticks[3] + ticks[4], sum(ticks))


def measure_http(
    requests: Sequence[bytes],
    spans_per_request: Sequence[int],
    db: Path,
    workers: int,
    senders: int,
    threads: int,
    gzip_bodies: bool,
    timeout_s: float,
    *,
    rollups: bool = True,
    duckdb_threads: int = 0,
) -> tuple[int, float, int, CpuUse]:
    """(spans acknowledged, seconds from the first POST to the last answer, 503s, the
    CPU the server, its decoding workers and the machine used meanwhile)."""
    bodies = [
        (index, gzip.compress(body, 1) if gzip_bodies else body, spans)
        for index, (body, spans) in enumerate(zip(requests, spans_per_request, strict=True))
    ]
    shares = [bodies[n::senders] for n in range(senders)]
    port = free_port()
    process = start_server(db, port, workers, rollups=rollups, duckdb_threads=duckdb_threads)
    url = f"http://127.0.0.1:{port}/v1/traces"
    try:
        # Warm-up: the first answer comes once the decoding workers have started. Its
        # spans are not among the measured ones (the store keeps a span id once).
        [warm] = make_requests(spans_per_request[0], spans_per_request[0], 20, seed=1)
        warm_keys = span_keys(warm)
        if gzip_bodies:
            warm = gzip.compress(warm, 1)
        warm_deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        *_, warmed, _ = send(url, [(-1, warm, len(warm_keys))], gzip_bodies, warm_deadline)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=senders, mp_context=context) as pool:
            # Every sender process started and imported before the clock starts; the
            # pool starts a process per task while none is idle.
            ready = [pool.submit(time.sleep, 0.5) for _ in range(senders)]
            for started in ready:
                started.result(timeout=SERVER_START_TIMEOUT_S * 2)
            deadline = time.monotonic() + timeout_s
            cpu_before = CpuSample.now(process.pid)
            results = [
                pool.submit(send, url, share, gzip_bodies, deadline, threads) for share in shares
            ]
            answers = [r.result(timeout=timeout_s + 60) for r in results]
            cpu = CpuUse.between(cpu_before, CpuSample.now(process.pid), sum(a[5] for a in answers))
    finally:
        stop_server(process)
    sent_spans = sum(a[0] for a in answers)
    refused = sum(a[1] for a in answers)
    elapsed = max(a[3] for a in answers) - min(a[2] for a in answers)
    sent = [span_keys(body) for body in requests] + [warm_keys]
    acknowledged = {n for a in answers for n in a[4]} | {len(requests) for _ in warmed}
    check_stored(db, sent, acknowledged)
    return sent_spans, elapsed, refused, cpu


def process_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by process ``pid`` and by its children (the decoding
    workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    own = children = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ..., utime and stime at positions 11 and 12.
        used = int(fields[11]) + int(fields[12])
        if int(entry.name) == pid:
            own += used
        elif int(fields[1]) == pid:
            children += used
    return own / ticks, children / ticks


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--spans-per-trace", type=int, default=20)
    parser.add_argument(
        "--workers",
        default=f"1,{os.cpu_count() or 1}",
        help="comma-separated `workers` settings to run end to end [default: 1 and the cpus]",
    )
    parser.add_argument("--senders", type=int, default=4, help="sender processes")
    parser.add_argument(
        "--threads",
        default="8,16,32",
        help="concurrent requests per sender process, comma-separated: each setting runs at"
        " each, and its capacity is its best rate (group commits fill with concurrent"
        " requests, so too few in flight measure the wait for a commit, not the server)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="end-to-end rounds per setting")
    parser.add_argument("--gzip", action="store_true", help="send bodies gzip-compressed")
    parser.add_argument("--phase-timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S)
    parser.add_argument(
        "--without-rollups",
        action="store_true",
        help="also run each setting against a store keeping no rollups, and print the ratio",
    )
    parser.add_argument(
        "--duckdb-threads",
        type=int,
        default=0,
        help="the store's DuckDB threads, (a) and (c) alike (default 0: one per core)",
    )
    args = parser.parse_args()
    worker_settings = [int(w) for w in args.workers.split(",")]
    concurrencies = [int(t) for t in args.threads.split(",")]

    started = time.perf_counter()
    requests = make_requests(args.spans, args.spans_per_request, args.spans_per_trace)
    generation = time.perf_counter() - started
    mean_bytes = sum(map(len, requests)) / len(requests)
    print(
        f"generated {len(requests)} requests, {args.spans} spans in {generation:.1f} s; "
        f"{mean_bytes / args.spans_per_request:.0f} B/span on the wire; {load_average()}"
    )

    # Requests of their own (another seed): a warm-up, then new ones for each round.
    per_round = max(1, DECODE_SAMPLE_SPANS // args.spans_per_request)
    decoding = make_requests(
        per_round * args.spans_per_request * (DECODE_ROUNDS + 1),
        args.spans_per_request,
        args.spans_per_trace,
        seed=DECODE_SEED,
    )
    warm_up = decoding[:per_round]
    rounds = [decoding[per_round * (n + 1) : per_round * (n + 2)] for n in range(DECODE_ROUNDS)]
    for label, redactor in (
        ("redaction on (default)", ingest_redactor(ServerSettings())),
        ("redaction off", None),
    ):
        old, new, ratios, again = compare_decoders(warm_up, rounds, redactor)
        print(
            f"(b) decode protobuf, {label}: before {old:.1f} µs/span, after {new:.1f} µs/span "
            f"CPU; after/before {new / old:.2f} (rounds {min(ratios):.2f}–{max(ratios):.2f});"
            f" requests met before: {again:.1f} µs/span, {again / old:.2f}"
        )
    json_sample = [to_otlp_json(b) for b in requests[:JSON_SAMPLE_REQUESTS]]
    json_started = time.process_time()
    json_spans = sum(len(decode(body, PayloadFormat.JSON)) for body in json_sample)
    json_s = time.process_time() - json_started
    print(f"    decode OTLP JSON: {json_s / json_spans * 1e6:.1f} µs/span CPU ({json_spans} spans)")

    decoder = SpanDecoder(DEFAULT_LIMITS, ingest_redactor(ServerSettings()))
    batches = [decoder.decode(body, PayloadFormat.PROTOBUF) for body in requests]
    sizes = [len(b) for b in batches]
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        direct_spans, direct_s = measure_direct(
            batches,
            Path(tmp) / "direct.duckdb",
            time.monotonic() + args.phase_timeout,
            duckdb_threads=args.duckdb_threads,
        )
        direct_rate = direct_spans / direct_s
        print(f"(a) DuckDBStore.write: {direct_rate:,.0f} spans/s ({direct_spans} spans)")

        kinds = (True, False) if args.without_rollups else (True,)
        # Each setting's rates: (spans/s, threads per sender) of every round and load.
        rates: dict[tuple[int, bool], list[tuple[float, int]]] = {
            (w, kept): [] for w in worker_settings for kept in kinds
        }
        encoding = "gzip" if args.gzip else "identity"
        phases = [(r, t) for r in range(args.rounds) for t in concurrencies]
        for round_, threads in phases:
            for workers, kept in rates:
                db = Path(tmp) / f"http-{workers}-{kept}-{round_}-{threads}.duckdb"
                http_spans, http_s, refused, cpu = measure_http(
                    requests,
                    sizes,
                    db,
                    workers,
                    args.senders,
                    threads,
                    args.gzip,
                    args.phase_timeout,
                    rollups=kept,
                    duckdb_threads=args.duckdb_threads,
                )
                rate = http_spans / http_s
                rates[workers, kept].append((rate, threads))
                print(
                    f"(c) OTLP/HTTP end to end, workers={workers}"
                    f"{'' if kept else ', no rollups'}: {rate:,.0f} spans/s "
                    f"({http_spans} spans, {args.senders}×{threads} senders, {encoding}, "
                    f"{refused} requests retried: 503 or connection lost); "
                    f"{cpu.described(http_s, http_spans)}; {load_average()}"
                )
    best = {key: max(r)[0] for key, r in rates.items()}
    for (workers, kept), runs in rates.items():
        rate, threads = max(runs)
        print(
            f"capacity, workers={workers}{'' if kept else ', no rollups'}: {rate:,.0f} spans/s"
            f" (best of {len(runs)} runs, at {args.senders}×{threads} in flight)"
        )
    of_each = f"best of {args.rounds} rounds × {len(concurrencies)} loads each"
    base = best[worker_settings[0], True]
    for workers in worker_settings[1:]:
        print(
            f"end to end workers={workers} / workers={worker_settings[0]} ({of_each})"
            f" = {best[workers, True] / base:.2f}"
        )
    for workers in worker_settings:
        print(f"ratio (c)/(a), workers={workers} = {best[workers, True] / direct_rate:.2f}")
        if args.without_rollups:
            print(
                f"end to end with rollups / without, workers={workers} ({of_each})"
                f" = {best[workers, True] / best[workers, False]:.2f}"
            )


if __name__ == "__main__":
    main()
