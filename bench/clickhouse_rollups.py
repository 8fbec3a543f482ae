"""Fleet rollups on ClickHouse (chDB) beside DuckDB: the same shop, the same run.

    python bench/clickhouse_rollups.py                 # 200,000 spans
    python bench/clickhouse_rollups.py --spans 1000000

Loads the shop of ``analysis.py`` (``analysis_workload.py``: twelve services, ~19 spans
per trace, an hour of traffic) into a DuckDB store and a ClickHouse store on chDB
(the engine in this process), both keeping rollups at ingest, and prints each load's
spans/s and each fleet view's time on both stores with the ratio ClickHouse ÷ DuckDB
(fastest of ``--repeat`` runs after a warm-up). Both answers are compared: counts
must be equal (a difference is printed).

The bytes per span of the ClickHouse rollup tables are printed as inserted and after
``OPTIMIZE … FINAL``; the reads then run on merged parts, as DuckDB's run on rollups
folded by ``compact_rollups`` (a running server folds them every few commits, and
ClickHouse merges in the background; both sum unmerged rows alike).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

# Run as a script, so this directory is on sys.path and the shop's modules import.
from analysis import MINUTE_NS, shop_batches, timed
from analysis import load as load_into
from threadline.server.aggregates import OperationRed, ServiceMap, ServiceRed, TimeWindow
from threadline.server.metric_rows import MetricRows
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse import rollup_schema
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

HOUR_NS: Final = 3600 * 1_000_000_000


def _views(hour: TimeWindow) -> list[tuple[str, Callable[[Store], Any]]]:
    first, last = hour.start_ns // MINUTE_NS, hour.end_ns // MINUTE_NS
    return [
        ("service map (1h)", lambda s: s.service_map(hour)),
        ("per-operation percentiles (1h)", lambda s: s.operation_red(hour)),
        (
            "RED of one service, 1m buckets",
            lambda s: s.service_red("payments", hour, bucket_ns=MINUTE_NS),
        ),
        ("/metrics rows (1h)", lambda s: s.metric_rows(first, last)),
        ("exemplars (1h)", lambda s: s.exemplars(first, last)),
    ]


def _counts(answer: Any) -> Any:
    """What must be equal between the stores: requests and calls, not percentiles."""
    if isinstance(answer, MetricRows):
        return sorted((r.service, r.operation, r.slot, r.requests) for r in answer.operations)
    if isinstance(answer, ServiceMap):
        return [(e.caller, e.callee, e.kind, e.stats.calls) for e in answer.edges]
    if isinstance(answer, ServiceRed):
        return (answer.totals.requests, [b.stats.requests for b in answer.buckets])
    if isinstance(answer, list) and all(isinstance(r, OperationRed) for r in answer):
        return [(r.service, r.operation, r.stats.requests, r.stats.errors) for r in answer]
    return None  # exemplars: one example per key, either store's choice


def _rollup_bytes(store: ClickHouseStore, spans: int) -> None:
    """Bytes per span of the rollup tables on disk, as inserted and merged."""
    sizes = (
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE active"
        " AND database = 'threadline' AND table IN {tables:Array(String)}"
    )
    tables = {"tables": list(rollup_schema.MERGED)}
    inserted = int(store._fetch(sizes, tables)[0][0] or 0)  # no public size of the rollups
    for table in rollup_schema.MERGED:
        store._command(f"OPTIMIZE TABLE threadline.{table} FINAL", {})
    merged = int(store._fetch(sizes, tables)[0][0] or 0)
    print(
        f"chdb rollup tables: {inserted / spans:.1f} B/span inserted, {merged / spans:.1f} merged"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    args = parser.parse_args()

    end_ns = time.time_ns()
    end = -(-end_ns // (10 * MINUTE_NS)) * 10 * MINUTE_NS
    hour = TimeWindow(end - HOUR_NS, end)
    batches = list(shop_batches(args.spans, end_ns, time_ordered=True))
    with tempfile.TemporaryDirectory(prefix="threadline-ch-bench-") as tmp:
        duck = DuckDBStore(Path(tmp) / "spans.duckdb")
        click = ClickHouseStore(StoreUrl(backend="chdb", path=Path(tmp) / "chdb"))
        try:
            rates = {}
            for name, store in (("duckdb", duck), ("chdb", click)):
                written, seconds = load_into(store, batches)  # type: ignore[arg-type]
                rates[name] = written / seconds
                print(f"load into {name:<8}{written:>10,} spans  {rates[name]:>10,.0f} spans/s")
            print(f"ingest chdb ÷ duckdb: {rates['chdb'] / rates['duckdb']:.2f}")
            _rollup_bytes(click, written)
            duck.compact_rollups()
            header = f"\n{'fleet view':<34}{'duckdb ms':>11}{'chdb ms':>10}{'chdb ÷ duckdb':>15}"
            print(header)
            for name, view in _views(hour):
                fast_duck, _ = timed(functools.partial(view, duck), args.repeat)
                fast_click, _ = timed(functools.partial(view, click), args.repeat)
                agree = _counts(view(duck)) == _counts(view(click))
                note = "" if agree else "  (answers differ)"
                print(
                    f"{name:<34}{fast_duck * 1000:>11.1f}{fast_click * 1000:>10.1f}"
                    f"{fast_click / fast_duck:>15.1f}{note}"
                )
        finally:
            click.close()
            duck.close()


if __name__ == "__main__":
    main()
