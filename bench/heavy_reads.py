"""Does the server stay alive under heavy reads? /healthz latency and memory while
concurrent viewers open one very large trace.

    python bench/heavy_reads.py --spans 100000 --viewers 12
    PYTHONPATH=/path/to/other/src python bench/heavy_reads.py   # the same, another build

Stores one trace of ``--spans`` spans (10 attributes each) in a DuckDB file, starts
``threadline serve`` on it as a real process on 127.0.0.1, and prints:

  - ``--viewers`` viewers at once, each opening the trace nobody has opened yet: their
    answers (status, time), the server's resident memory (peak of the samples, and
    VmHWM) and ``/healthz`` latency (p50, p99, worst, failures) measured every 50 ms
    meanwhile;
  - the same /healthz figures with no load, as the baseline of this run, and the
    ratio of the loaded p99 to it;
  - then one viewer alone: time and size of ``GET /api/traces/{id}`` (what the trace
    page fetches first) and, if the answer is paged, of fetching every page;
  - on a fresh server, ``--bodies`` OTLP JSON bodies of 8 MB (1,500 spans of 100
    attributes) posted at once: their statuses and the server's peak memory.

Every request has a deadline (``--timeout``); the server is stopped at the end.
Run it once on each build to compare (the server is whichever ``threadline``
``PYTHONPATH`` imports).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore

# The load helpers are the ones the load tests use (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.load import (
    concurrent_gets,
    concurrent_posts,
    otlp_json_body,
    probing,
    rss_bytes,
    wide_trace,
)
from support.processes import threadline_serve

TRACE_ID = "ab" * 16
BASELINE_PROBE_S = 3.0
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--viewers", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline per request (s)")
    parser.add_argument("--bodies", type=int, default=6, help="large ingest bodies at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heavy-reads-") as tmp:
        directory = Path(tmp)
        db = directory / "spans.duckdb"
        began = time.perf_counter()
        store = DuckDBStore(db)
        try:
            store.write(SpanBatch.from_records(wide_trace(TRACE_ID, args.spans))).result()
        finally:
            store.close()
        print(f"stored one trace of {args.spans} spans in {time.perf_counter() - began:.1f} s")
        with threadline_serve(directory, db=db) as server:
            run(server.url, server.pid, args)
        if args.bodies:
            with threadline_serve(directory, db=directory / "ingest.duckdb") as server:
                ingest(server.url, server.pid, args)


def ingest(url: str, pid: int, args: argparse.Namespace) -> None:
    body = otlp_json_body(1500, 100)
    _, resident = rss_bytes(pid)
    answers = concurrent_posts(
        f"{url}/v1/traces",
        [body] * args.bodies,
        headers={"content-type": "application/json"},
        timeout_s=args.timeout,
    )
    _, peak = rss_bytes(pid)
    print(
        f"{args.bodies} JSON bodies of {len(body) / MIB:.1f} MiB at once: statuses "
        f"{sorted(answer.status for answer in answers)}; server memory {resident / MIB:.0f} MiB "
        f"before, VmHWM {peak / MIB:.0f} MiB"
    )


def run(url: str, pid: int, args: argparse.Namespace) -> None:
    trace_url = f"{url}/api/traces/{TRACE_ID}"
    with probing(url, pid) as idle:
        time.sleep(BASELINE_PROBE_S)
    print(
        f"idle      /healthz p50 {idle.percentile(50) * 1000:7.1f} ms  "
        f"p99 {idle.percentile(99) * 1000:7.1f} ms  ({len(idle.latencies)} probes)"
    )
    with probing(url, pid) as loaded:
        began = time.perf_counter()
        answers = concurrent_gets(trace_url, args.viewers, timeout_s=args.timeout)
        wall = time.perf_counter() - began
    statuses: dict[int, int] = {}
    for one in answers:
        statuses[one.status] = statuses.get(one.status, 0) + 1
    served = [one.seconds for one in answers if one.status == 200]
    _, peak = rss_bytes(pid)
    print(
        f"{args.viewers} viewers at once: statuses {dict(sorted(statuses.items()))} in {wall:.1f} s"
        + (f", median answer {statistics.median(served):.2f} s" if served else "")
    )
    print(
        f"loaded    /healthz p50 {loaded.percentile(50) * 1000:7.1f} ms  "
        f"p99 {loaded.percentile(99) * 1000:7.1f} ms  worst {loaded.worst * 1000:7.1f} ms  "
        f"failures {loaded.failures}  ({len(loaded.latencies)} probes)"
    )
    print(
        f"server memory: RSS peak while loaded {loaded.peak_rss / MIB:.0f} MiB, "
        f"VmHWM {peak / MIB:.0f} MiB"
    )
    ratio = loaded.percentile(99) / max(idle.percentile(99), 1e-6)
    print(f"ratio loaded/idle /healthz p99: {ratio:.1f}x")
    with httpx.Client(timeout=args.timeout) as client:
        began = time.perf_counter()
        first = client.get(trace_url)
        first_s = time.perf_counter() - began
        answer = first.json()
        print(
            f"one viewer after them: first answer {first.status_code} in {first_s:.2f} s, "
            f"{len(first.content) / MIB:.1f} MiB, {len(answer['spans'])} of "
            f"{answer.get('span_count', len(answer['spans']))} spans"
        )
        pages, size, next_offset = 1, len(first.content), answer.get("next_offset")
        while next_offset is not None and pages <= args.spans:
            page = client.get(trace_url, params={"offset": next_offset})
            pages, size = pages + 1, size + len(page.content)
            next_offset = page.json().get("next_offset")
        if pages > 1:
            print(
                f"            every page: {pages} pages, {size / MIB:.1f} MiB in "
                f"{time.perf_counter() - began:.2f} s"
            )


if __name__ == "__main__":
    main()
