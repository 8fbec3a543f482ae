"""SLO evaluation cost: what one SLO costs per evaluation tick, from the rollups.

    cd bench && python3 slo.py --spans 1000000 --hours 24

Loads the analysis benchmark's shop (``analysis_workload``: twelve services, four
routes, journeys) spread over the last ``--hours`` into a DuckDB store with rollups,
then times, fastest and median of ``--repeat`` runs after a warm-up:

- one SLO assessed (budget over 30 days, burn over six windows, retries for an edge:
  what each tick does per SLO), for an errors, a latency and an edge SLO;
- a journey SLO and a funnel step SLO (``reaches``), read from the journey steps (one
  row per trace of a session, grouped once per session for every window);
- a whole tick of the evaluator over those SLOs;
- what the SLO page adds per SLO: the burndown (61 nested windows) and the 1h and 6h
  burn over three days (``slo_series``);
- the journey SLO again with ``--unfolded`` more spans written last and not folded
  yet (timed before the writer's idle fold), whose sessions the read counts again;
  then what the evaluator's tick does instead: the fold it asks for, and the read
  after it;
- the baseline in the same run: one RED read of a service over the last hour from
  the rollups (``Store.service_red``), what the service page already costs.

Prints each figure and its ratio to the baseline. ``--store chdb`` then loads the same
spans into a ClickHouse store (chDB, in this process) and times the same reads there,
against the same DuckDB baseline, and prints each ClickHouse figure over DuckDB's.
Bounded: the load is ``--spans`` spans, each timing ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis_workload import generate
from threadline.server.aggregates import TimeWindow
from threadline.server.alerting.assess import assess
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.alerting.overview import burn_series_of, burndown_of
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import parse

HOUR_NS: Final = 3600 * 1_000_000_000
IN_FLIGHT: Final = 32
SLOS: Final = parse(
    {
        "slos": [
            {
                "name": "checkout-errors",
                "service": "gateway",
                "operation": "POST /checkout",
                "objective": 0.99,
                "window": "30d",
                "indicator": "errors",
            },
            {
                "name": "products-fast",
                "service": "gateway",
                "operation": "GET /products",
                "objective": 0.95,
                "window": "30d",
                "indicator": "latency",
                "threshold": "300ms",
            },
            {
                "name": "orders-calls",
                "service": "gateway",
                "callee": "orders",
                "objective": 0.999,
                "window": "30d",
                "indicator": "edge",
                "threshold": "200ms",
            },
            {
                "name": "checkout-journeys",
                "service": "gateway",
                "operation": "POST /checkout",
                "objective": 0.98,
                "window": "7d",
                "indicator": "journey",
            },
            {
                "name": "cart-to-checkout",
                "service": "gateway",
                "operation": "POST /cart",
                "reaches": "POST /checkout",
                "objective": 0.9,
                "window": "7d",
                "indicator": "journey",
            },
        ]
    }
)


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    call()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return min(runs), statistics.median(runs)


def load(store: Store, args: argparse.Namespace, end_ns: int, name: str) -> None:
    started = time.perf_counter()
    pending: deque[Future[None]] = deque()
    for batch in generate(
        args.spans,
        end_ns=end_ns,
        window_ns=int(args.hours * HOUR_NS),
        sessions=20_000,
        batch_spans=10_000,
    ):
        pending.append(store.write(batch))
        while len(pending) >= IN_FLIGHT:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    compact = getattr(store, "compact_rollups", None)
    if compact is not None:
        compact()
    took = time.perf_counter() - started
    print(f"loaded {args.spans} spans over {args.hours:g} h in {took:.1f} s into {name}")


def measure(store: Store, end_ns: int, repeat: int, base: float) -> dict[str, float]:
    """Each SLO assessed, then a whole tick; the fastest run of each, in seconds."""
    found: dict[str, float] = {}
    for slo in SLOS.slos:
        fastest, median = timed(
            lambda slo=slo: assess(store, slo, end_ns, min_events=10, retry_share=0.1), repeat
        )
        found[slo.name] = fastest
        print(
            f"{slo.indicator.value:8}  {slo.name:26} {fastest * 1e3:7.2f} ms"
            f" (median {median * 1e3:.2f})  {fastest / base:5.1f}x baseline"
        )
    evaluator = Evaluator(store, lambda: SLOS, clock=lambda: end_ns, deliver=lambda n: None)
    tick, tick_median = timed(evaluator.tick, repeat)
    found["tick"] = tick
    print(
        f"tick      {len(SLOS.slos)} SLOs                     {tick * 1e3:7.2f} ms"
        f" (median {tick_median * 1e3:.2f})  {tick / base:5.1f}x baseline"
    )
    return found


def unfolded_journeys(
    store: DuckDBStore, end_ns: int, spans: int, repeat: int, base: float
) -> None:
    """The journey SLO with traces not folded yet: ``spans`` more spans of the same
    sessions over the last ten minutes, written and timed before the writer folds them
    (it folds once idle for ``IDLE_FOLD_S``): the read then counts their sessions again
    from their steps. Then what a tick does instead: the fold it asks for first
    (``Store.fold_pending``) and the read after it, over three rounds of new spans.
    Prints how many traces were unfolded."""
    slo = next(s for s in SLOS.slos if s.name == "checkout-journeys")

    def arrive(seed: int) -> None:
        batches = generate(
            spans, end_ns=end_ns, window_ns=600 * 10**9, sessions=20_000, batch_spans=10_000,
            seed=seed,
        )  # fmt: skip
        for future in [store.write(batch) for batch in batches]:
            future.result()

    def unfolded() -> int:
        sql = "SELECT count(DISTINCT trace_id) FROM trace_summaries WHERE fresh"
        return int(store._fetch(sql, [])[0][0])

    def read() -> None:
        assess(store, slo, end_ns, min_events=10, retry_share=0.1)

    arrive(12)
    before = unfolded()
    fastest, median = timed(read, repeat)
    after = unfolded()
    print(
        f"unfolded  {slo.name:26} {fastest * 1e3:7.2f} ms (median {median * 1e3:.2f})"
        f"  {fastest / base:5.1f}x baseline  ({before} traces unfolded, {after} after)"
    )
    folds, reads = [], []
    for round_ in range(3):
        if round_:
            arrive(12 + round_)
        waiting = unfolded()
        started = time.perf_counter()
        store.fold_pending()
        folds.append(time.perf_counter() - started)
        reads.append(timed(read, repeat)[0])
        print(f"fold      {waiting} traces unfolded: fold {folds[-1] * 1e3:7.2f} ms")
    print(
        f"tick      fold first, then {slo.name}: fold {min(folds) * 1e3:7.2f} ms"
        f" (median {statistics.median(folds) * 1e3:.2f}), read {min(reads) * 1e3:7.2f} ms"
        f"  {min(reads) / base:5.1f}x baseline"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=24.0, help="time the spans spread over")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--unfolded",
        type=int,
        default=20_000,
        help="spans written last and timed unfolded (the journey SLO); 0: none",
    )
    parser.add_argument(
        "--store",
        choices=("duckdb", "chdb"),
        default="duckdb",
        help="chdb: also load the same spans into a ClickHouse store (chDB) and time it",
    )
    args = parser.parse_args()
    end_ns = time.time_ns()
    with tempfile.TemporaryDirectory() as scratch:
        duck = DuckDBStore(Path(scratch) / "slo.duckdb")
        try:
            load(duck, args, end_ns, "DuckDB")
            hour = TimeWindow(end_ns - HOUR_NS, end_ns)
            base, base_median = timed(lambda: duck.service_red("gateway", hour), args.repeat)
            print(
                f"baseline  service_red(gateway, 1h)  {base * 1e3:7.2f} ms"
                f" (median {base_median * 1e3:.2f})"
            )
            on_duckdb = measure(duck, end_ns, args.repeat, base)
            # The SLO page's reads (burndown and burn-rate series), DuckDB only: the
            # ClickHouse store has no burn-rate series yet.
            for slo in SLOS.slos:
                fastest, median = timed(
                    lambda slo=slo: (
                        burndown_of(duck, slo, end_ns),
                        burn_series_of(duck, slo, end_ns),
                    ),
                    args.repeat,
                )
                print(
                    f"page      {slo.name:26} {fastest * 1e3:7.2f} ms"
                    f" (median {median * 1e3:.2f})  {fastest / base:5.1f}x baseline"
                )
            if args.unfolded:
                unfolded_journeys(duck, end_ns, args.unfolded, args.repeat, base)
        finally:
            duck.close()
        if args.store != "chdb":
            return
        # The same spans (the workload is seeded) into chDB; the baseline stays DuckDB's.
        from threadline.server.storage.clickhouse.store import ClickHouseStore
        from threadline.store_url import StoreUrl

        house = ClickHouseStore(StoreUrl(backend="chdb", path=Path(scratch) / "chdb"))
        try:
            load(house, args, end_ns, "chDB")
            on_chdb = measure(house, end_ns, args.repeat, base)
        finally:
            house.close()
        for name, seconds in on_chdb.items():
            print(f"chdb/duckdb  {name:26} {seconds / on_duckdb[name]:5.2f}x")


if __name__ == "__main__":
    main()
