"""Scheduled drills' cost to the server: ingest with drills running, and a run's store work.

    PYTHONPATH=src python3 bench/drills.py --spans 200000 --probes 4 --rounds 5

In one run, on a real DuckDB file and a loopback HTTP service the probes hit:

  (a) spans/s written with ``DuckDBStore.write`` (500-span batches, 8 in flight), no
      drills running: the baseline (median of ``--rounds`` rounds, alternating with (b));
  (b) the same while a ``DrillScheduler`` runs ``--probes`` probes every ``--interval``
      (default 1s, the shortest allowed) on two workers: each run sends its request,
      polls the store for its trace twice a second for 1 s and saves its result;
      ratio (b)/(a);
  (c) one result saved (``save_drill_result``, a turn on the writer) and one probe's
      history read (``drill_results``, 50 runs), median of ``--repeat``, against one
      500-span batch written.

Bounded: the load is ``--spans`` spans per phase, every wait has a deadline, and the
service and scheduler are stopped in all cases.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from threadline.probing.definitions import parse
from threadline.server.batch import SpanBatch
from threadline.server.drills.record import DrillProblem, DrillResult
from threadline.server.drills.scheduler import DrillScheduler
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

BATCH: Final = 500
IN_FLIGHT: Final = 8
PHASE_TIMEOUT_S: Final = 120.0


class Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def batches(count: int, offset: int) -> list[SpanBatch]:
    now = time.time_ns()
    made = []
    for first in range(0, count, BATCH):
        records = [
            SpanRecord(
                trace_id=f"{offset + (first + n) // 20:032x}",
                span_id=f"{first + n + 1:016x}",
                parent_span_id=None if n % 20 == 0 else f"{first + n:016x}",
                service_name=f"service-{n % 7}",
                name=f"GET /route/{n % 13}",
                kind=SpanKind.SERVER if n % 20 == 0 else SpanKind.INTERNAL,
                start_ns=now - (first + n) * 1_000_000,
                end_ns=now - (first + n) * 1_000_000 + 5_000_000,
                attributes={"http.route": f"/route/{n % 13}", "n": str(n % 50)},
            )
            for n in range(min(BATCH, count - first))
        ]
        made.append(SpanBatch.from_records(records))
    return made


def write_rate(store: DuckDBStore, load: list[SpanBatch]) -> float:
    started = time.perf_counter()
    pending: deque[Future[None]] = deque()
    for batch in load:
        if len(pending) >= IN_FLIGHT:
            pending.popleft().result(timeout=PHASE_TIMEOUT_S)
        pending.append(store.write(batch))
    for future in pending:
        future.result(timeout=PHASE_TIMEOUT_S)
    return sum(len(b) for b in load) / (time.perf_counter() - started)


def median_s(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def result(at: int) -> DrillResult:
    problem = DrillProblem("broken-hop", "a called b", "pay", "f" * 32, ("a", "b"))
    return DrillResult(
        "bench", at, 10**9, False, "probe-x", ("f" * 32,), ("a",), (problem,), "FAIL"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of (a) and (b)")
    parser.add_argument("--interval", default="1s", help="each probe's interval")
    args = parser.parse_args()
    # Every run fails (the service sends no traces): its warning is not the figure.
    logging.getLogger("threadline.server.drills").setLevel(logging.ERROR)
    service = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    service.daemon_threads = True
    threading.Thread(target=service.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{service.server_address[1]}"
    document = parse(
        {
            "probes": [
                {"name": f"p{i}", "interval": args.interval, "wait": "1s", "url": f"{url}/p{i}"}
                for i in range(args.probes)
            ]
        }
    )
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "bench.duckdb")
        scheduler = DrillScheduler(store, lambda: document, trace_url=str, workers=2)
        try:
            write_rate(store, batches(20_000, 10**9))  # warm-up
            # Alternate the two so a change in the machine's load hits both alike.
            share = args.spans // args.rounds
            alone_rates, drill_rates = [], []
            for round_ in range(args.rounds):
                alone_rates.append(write_rate(store, batches(share, round_ * 2 * 10**7)))
                scheduler.start()
                time.sleep(1.0)
                drill_rates.append(write_rate(store, batches(share, (round_ * 2 + 1) * 10**7)))
                scheduler.stop()
            alone, with_drills = statistics.median(alone_rates), statistics.median(drill_rates)
            runs = len(store.drill_results(limit=1000))
            for n in range(60):
                store.save_drill_result(result(n), keep=500)
            one_batch = batches(BATCH, 10**9 + 10**6)[0]
            write_s = median_s(lambda: store.write(one_batch).result(), args.repeat)
            counter = iter(range(1000, 10**6))
            save_s = median_s(
                lambda: store.save_drill_result(result(next(counter)), keep=500), args.repeat
            )
            read_s = median_s(lambda: store.drill_results("bench", limit=50), args.repeat)
        finally:
            scheduler.stop()
            store.close()
            service.shutdown()
    print(f"(a) ingest, no drills:                 {alone:,.0f} spans/s")
    print(
        f"(b) ingest, {args.probes} drills every {args.interval}:  {with_drills:,.0f} spans/s"
        f"  ({runs} drill runs stored meanwhile)"
    )
    print(f"    ratio (b)/(a): {with_drills / alone:.2f}")
    print(f"(c) one 500-span batch written:        {write_s * 1e3:.2f} ms")
    print(
        f"    one drill result saved:            {save_s * 1e3:.2f} ms"
        f"  ({save_s / write_s:.2f}x a batch)"
    )
    print(
        f"    one probe's 50 runs read:          {read_s * 1e3:.2f} ms"
        f"  ({read_s / write_s:.2f}x a batch)"
    )


if __name__ == "__main__":
    main()
