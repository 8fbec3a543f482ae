"""How long ``GET /metrics`` takes to build for a fleet of services × operations.

Run: ``python bench/metrics.py [--services 50] [--operations 20] [--traces 6] [--rounds 21]
[--slos 20]``

Writes, into a fresh DuckDB file, ``--traces`` traces per service × operation spread
over the last ten minutes (a root SERVER span and a call to the next service's
operation of the same name, so every service has ``--operations`` entry operations
and one edge), then times, ``--rounds`` times each and by median:

- the baseline: ``Store.operation_red`` over the same ten minutes, the rollup read the
  operations table of the API makes;
- ``/metrics`` in the Prometheus text format, and in OpenMetrics with exemplars, from
  the same registry the server builds (rollup read, exemplar read, encoding);
- ``/metrics`` with the SLO gauges of ``--slos`` error SLOs (one per service, after an
  evaluator tick), in the text format, and the SLO source alone.

Prints each time, the ratio to the baseline, and the body's size and series count.
Every loop is bounded by ``--rounds``; nothing listens on the network.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from threadline.server.aggregates import TimeWindow
from threadline.server.alerting.delivery import Dispatcher
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.batch import SpanBatch
from threadline.server.ingest.clock import FutureStarts
from threadline.server.ingest.counters import IngestCounters
from threadline.server.metrics.registry import MetricsRegistry
from threadline.server.metrics.slo_families import slo_families
from threadline.server.metrics.wiring import build_registry
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import parse_json

MS = 1_000_000
MINUTE = 60_000 * MS
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def fleet(services: int, operations: int, traces: int, now: int) -> list[SpanRecord]:
    rng = random.Random(7)
    spans: list[SpanRecord] = []
    start_of = now - 10 * MINUTE
    for s in range(services):
        callee = f"service-{(s + 1) % services}"
        for o in range(operations):
            for t in range(traces):
                trace = f"{s:04x}{o:04x}{t:08x}".ljust(32, "0")
                start = start_of + rng.randrange(10 * MINUTE - 10_000 * MS)
                child_ms = rng.lognormvariate(3.5, 0.8)
                root_ms = child_ms + rng.lognormvariate(2.0, 0.5)
                failed = rng.random() < 0.02
                common = {"trace_id": trace, "name": f"GET /op-{o}"}
                spans += [
                    SpanRecord(span_id="1", parent_span_id=None, service_name=f"service-{s}",
                               kind=SpanKind.SERVER, start_ns=start,
                               end_ns=start + int(root_ms * MS), **common),
                    SpanRecord(span_id="2", parent_span_id="1", service_name=f"service-{s}",
                               kind=SpanKind.CLIENT, start_ns=start + MS,
                               end_ns=start + MS + int(child_ms * MS), **common),
                    SpanRecord(span_id="3", parent_span_id="2", service_name=callee,
                               kind=SpanKind.SERVER, start_ns=start + MS,
                               end_ns=start + MS + int(child_ms * MS),
                               status=StatusCode.ERROR if failed else StatusCode.UNSET,
                               **common),
                ]  # fmt: skip
    return spans


def median_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--operations", type=int, default=20)
    parser.add_argument("--traces", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--slos", type=int, default=20)
    args = parser.parse_args()
    now = time.time_ns()
    spans = fleet(args.services, args.operations, args.traces, now)
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "bench.duckdb")
        try:
            for first in range(0, len(spans), 20_000):
                batch = SpanBatch.from_records(spans[first : first + 20_000])
                store.write(batch).result(timeout=300)
            store.compact_rollups()
            registry = build_registry(store, IngestCounters(), FutureStarts(), Dispatcher([]))
            window = TimeWindow(now - 10 * MINUTE, now)
            baseline = median_ms(lambda: store.operation_red(window), args.rounds)
            text_ms = median_ms(lambda: registry.render(None), args.rounds)
            om_ms = median_ms(lambda: registry.render(OPENMETRICS), args.rounds)
            text, _ = registry.render(None)
            om, _ = registry.render(OPENMETRICS)
            document = parse_json(
                json.dumps(
                    {
                        "slos": [
                            {"name": f"slo-{n}", "service": f"service-{n % args.services}",
                             "objective": 0.99, "window": "30d", "indicator": "errors"}
                            for n in range(args.slos)
                        ]
                    }
                ).encode()
            )  # fmt: skip
            evaluator = Evaluator(store, lambda: document, deliver=lambda notices: None)
            evaluator.tick()

            def slo_source() -> list[object]:
                return slo_families(evaluator.last_reports(), store.alert_states())

            registry.add_source("slos", slo_source)  # type: ignore[arg-type]
            with_slos_ms = median_ms(lambda: registry.render(None), args.rounds)
            alone = MetricsRegistry()
            alone.add_source("slos", slo_source)  # type: ignore[arg-type]
            slos_ms = median_ms(lambda: alone.render(None), args.rounds)
            slo_text, _ = alone.render(None)
        finally:
            store.close()
    series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    exemplars = om.decode().count(" # {trace_id=")
    print(
        f"{args.services} services x {args.operations} operations, {len(spans):,} spans in "
        f"the last 10 minutes; median of {args.rounds} rounds"
    )
    print(f"baseline: Store.operation_red over 10 minutes   {baseline:8.1f} ms")
    print(
        f"/metrics, Prometheus text                    {text_ms:8.1f} ms "
        f"({text_ms / baseline:.1f}x baseline), {len(text) / 1024:.0f} KiB, {series:,} series"
    )
    print(
        f"/metrics, OpenMetrics with exemplars         {om_ms:8.1f} ms "
        f"({om_ms / baseline:.1f}x baseline), {len(om) / 1024:.0f} KiB, "
        f"{exemplars:,} exemplars"
    )
    slo_series = sum(
        1 for line in slo_text.decode().splitlines() if line.startswith("threadline_slo_")
    )
    print(
        f"/metrics, Prometheus text, {args.slos} SLOs' gauges   {with_slos_ms:8.1f} ms "
        f"({with_slos_ms / baseline:.1f}x baseline, +{with_slos_ms - text_ms:.1f} ms)"
    )
    print(
        f"the SLO source alone                         {slos_ms:8.1f} ms "
        f"({slos_ms / baseline:.2f}x baseline), {slo_series} series"
    )


if __name__ == "__main__":
    main()
