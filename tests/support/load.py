"""Load against a real server process, bounded in count and time: big traces, readers,
a probe timing ``/healthz``, and the server's memory read from ``/proc``.

Shared by the load tests (tests/e2e/test_heavy_reads.py) and bench/heavy_reads.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from threadline.server.model import SpanRecord, StatusCode

from .spans import span_record

# How often the probe asks /healthz while load runs.
PROBE_INTERVAL_S: Final = 0.05
# A probe answer slower than this counts as a timeout (and is recorded as this long).
PROBE_TIMEOUT_S: Final = 10.0
# Children per span of a wide trace: a realistic fan-out (a batch job's stages).
FAN_OUT: Final = 50


def wide_trace(
    trace_id: str, span_count: int, *, attributes: int = 10, start_ns: int | None = None
) -> list[SpanRecord]:
    """One trace of ``span_count`` spans: a root, stages under it, work under each stage.

    Every span carries ``attributes`` string attributes, as instrumented spans do.
    """
    base = time.time_ns() - 60_000_000_000 if start_ns is None else start_ns
    spans = [span_record(trace_id, f"{0:016x}", None, "batch", "job", base, base + 30_000_000_000)]
    stage = 0
    for n in range(1, span_count):
        start = base + n * 100_000
        if (n - 1) % (FAN_OUT + 1) == 0:
            # A stage covers the items under it, as a parent does.
            stage, parent, name, service = n, spans[0].span_id, "stage", "scheduler"
            end = start + (FAN_OUT + 1) * 100_000
        else:
            parent, name, service = f"{stage:016x}", "item", "worker"
            end = start + 90_000
        spans.append(
            span_record(
                trace_id,
                f"{n:016x}",
                parent,
                service,
                name,
                start,
                end,
                status=StatusCode.ERROR if n % 997 == 0 else StatusCode.UNSET,
                attributes={f"item.field_{k}": f"value {n} {k}" for k in range(attributes)},
            )
        )
    return spans


def rss_bytes(pid: int) -> tuple[int, int]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), in bytes."""
    now = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return now, peak


@dataclass
class ProbeLog:
    """What the probe saw: each answer's latency in seconds, and the memory samples."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    rss_samples: list[int] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("nan"))

    @property
    def peak_rss(self) -> int:
        return max(self.rss_samples, default=0)


@contextmanager
def probing(url: str, pid: int | None = None, *, path: str = "/healthz") -> Iterator[ProbeLog]:
    """Ask ``url + path`` every PROBE_INTERVAL_S (and sample ``pid``'s RSS) until the block ends."""
    log = ProbeLog()
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    client.get(url + path).raise_for_status()
                    log.latencies.append(time.perf_counter() - began)
                except httpx.HTTPError:
                    log.failures += 1
                    log.latencies.append(max(time.perf_counter() - began, PROBE_TIMEOUT_S))
                if pid is not None:
                    log.rss_samples.append(rss_bytes(pid)[0])
                stop.wait(PROBE_INTERVAL_S)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        stop.set()
        thread.join(PROBE_TIMEOUT_S + 1)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None
    size: int
    seconds: float
    # Why no answer came (status 0): the client's exception, for the failure message.
    error: str = ""


def concurrent_gets(
    url: str, count: int, *, timeout_s: float, headers: dict[str, str] | None = None
) -> list[Answer]:
    """``count`` GETs of ``url`` at once, each on its own connection; bodies read and dropped.

    A request that fails to get an answer in ``timeout_s`` is status 0. One client is
    built first and shared: building one per request costs the calling process more
    CPU (TLS set-up) than the requests themselves, and would slow its own probes.
    """
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    with httpx.Client(timeout=timeout_s, headers=headers, limits=limits) as client:

        def one(_: int) -> Answer:
            began = time.perf_counter()
            try:
                with client.stream("GET", url) as response:
                    size = sum(len(chunk) for chunk in response.iter_raw())
                    return Answer(
                        response.status_code,
                        response.headers.get("retry-after"),
                        size,
                        time.perf_counter() - began,
                    )
            except httpx.HTTPError as error:
                return Answer(0, None, 0, time.perf_counter() - began, repr(error))

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


def otlp_json_body(span_count: int, attributes: int, *, trace_id: str = "cd" * 16) -> bytes:
    """An OTLP JSON request of ``span_count`` spans with ``attributes`` string attributes each."""
    spans = [
        {
            "traceId": trace_id,
            "spanId": f"{n + 1:016x}",
            "name": "op",
            "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000100000000",
            "attributes": [
                {"key": f"k{k}", "value": {"stringValue": f"v{n}-{k}"}} for k in range(attributes)
            ],
        }
        for n in range(span_count)
    ]
    service = {"key": "service.name", "value": {"stringValue": "load"}}
    document = {
        "resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": spans}]}]
    }
    return json.dumps(document).encode()


def concurrent_posts(
    url: str, bodies: list[bytes], *, headers: dict[str, str], timeout_s: float
) -> list[Answer]:
    """Every body POSTed at once, each on its own connection; status 0 when no answer came."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    with httpx.Client(timeout=timeout_s, headers=headers, limits=limits) as client:

        def one(body: bytes) -> Answer:
            began = time.perf_counter()
            try:
                response = client.post(url, content=body)
            except httpx.HTTPError as error:
                return Answer(0, None, 0, time.perf_counter() - began, repr(error))
            return Answer(
                response.status_code,
                response.headers.get("retry-after"),
                len(response.content),
                time.perf_counter() - began,
            )

        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(one, bodies))
