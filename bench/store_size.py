"""Bytes per span on disk: the ClickHouse store (on chDB) against the DuckDB store.

    python bench/store_size.py                    # 200,000 spans of the analysis shop
    python bench/store_size.py --spans 1000000

Writes the same spans (``analysis_workload.py``: the shop, ~10 attributes per span,
20 spans per trace on average) into, each in a temporary directory:

- a DuckDBStore, as the server runs it (spans, their ART indexes, rollups, trace
  summaries, journey steps), measured by ``size_bytes`` (blocks in use after a
  checkpoint);
- a DuckDBStore without rollups (the span table and its indexes only);
- a ClickHouseStore on chDB (spans, trace-id lookup table), measured from its active
  parts before and after ``compact`` (``OPTIMIZE … FINAL``: the parts merged as
  background merges leave them in a steady state); then every table of its database,
  the rollups and summaries included, merged.

Prints spans/s of each load (one run, for orientation only: the goal here is size),
bytes per span, the ratio to DuckDB, the ClickHouse columns that take the most, and
the time of a trace by id (``get_trace``) on each, median of ``LOOKUPS`` traces, after
one warm-up: on ClickHouse it reads one granule per service × operation of the trace.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis_workload import generate
from threadline.server.batch import SpanBatch
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

HOUR_NS: Final = 3600 * 10**9
END_NS: Final = 1_700_000_000 * 10**9
SESSIONS: Final = 20_000
BATCH_SPANS: Final = 10_000
# Batches in flight while loading: groups stay full, far below the stores' bound.
IN_FLIGHT: Final = 8
TOP_COLUMNS: Final = 8
LOOKUPS: Final = 20


def batches(spans: int) -> list[SpanBatch]:
    return list(
        generate(
            spans, end_ns=END_NS, window_ns=HOUR_NS, sessions=SESSIONS, batch_spans=BATCH_SPANS
        )
    )


def load(store: Store, data: list[SpanBatch]) -> float:
    """Seconds to write every batch, ``IN_FLIGHT`` at a time."""
    started = time.perf_counter()
    pending = []
    for batch in data:
        pending.append(store.write(batch))
        if len(pending) >= IN_FLIGHT:
            pending.pop(0).result()
    for future in pending:
        future.result()
    return time.perf_counter() - started


def lookup_ms(store: Store, trace_ids: list[str]) -> float:
    """Median milliseconds of ``get_trace`` over ``trace_ids`` (the first read twice)."""
    store.get_trace(trace_ids[0])
    times = []
    for trace_id in trace_ids:
        started = time.perf_counter()
        store.get_trace(trace_id)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(
    name: str, opener: Callable[[Path], Store], data: list[SpanBatch], spans: int
) -> tuple[Store, Path, float]:
    directory = Path(tempfile.mkdtemp(prefix="threadline-size-"))
    store = opener(directory)
    seconds = load(store, data)
    print(f"{name:<34} {spans / seconds / 1000:>8.1f}k spans/s", end="")
    return store, directory, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args()
    data = batches(args.spans)
    spans = sum(len(b) for b in data)
    every_trace = sorted({t for b in data for t in b.table["trace_id"].to_pylist()})
    traces = len(every_trace)
    sample = every_trace[:: max(1, traces // LOOKUPS)][:LOOKUPS]
    print(f"{spans:,} spans, {traces:,} traces ({spans / traces:.1f} spans per trace)\n")

    sizes: dict[str, int] = {}
    lookups: dict[str, float] = {}
    for name, rollups in (("DuckDB (as served)", True), ("DuckDB (spans and indexes only)", False)):
        store, _, _ = measure(
            name, lambda d, r=rollups: DuckDBStore(d / "spans.duckdb", rollups=r), data, spans
        )
        sizes[name] = store.size_bytes()
        lookups[name] = lookup_ms(store, sample)
        print(f"  {sizes[name] / spans:>7.1f} B/span  trace by id {lookups[name]:.1f} ms")
        store.close()

    ch, _, _ = measure(
        "chDB", lambda d: ClickHouseStore(StoreUrl(backend="chdb", path=d / "chdb")), data, spans
    )
    assert isinstance(ch, ClickHouseStore)
    before = ch.size_bytes()
    ch.compact()
    sizes["chDB"] = ch.size_bytes()
    lookups["chDB"] = lookup_ms(ch, sample)
    print(
        f"  {sizes['chDB'] / spans:>7.1f} B/span merged ({before / spans:.1f} as inserted)"
        f"  trace by id {lookups['chDB']:.1f} ms"
    )
    columns = ch._fetch(
        "SELECT table, name, sum(data_compressed_bytes) AS bytes FROM system.columns"
        " WHERE database = {db:String} AND table IN ('spans', 'trace_id_ts')"
        " GROUP BY table, name ORDER BY bytes DESC LIMIT {n:UInt64}",
        {"db": ch._connection.database, "n": TOP_COLUMNS},
    )
    indexes = ch._fetch(
        "SELECT sum(secondary_indices_compressed_bytes), sum(primary_key_bytes_in_memory)"
        " FROM system.parts WHERE active AND database = {db:String} AND table = 'spans'",
        {"db": ch._connection.database},
    )
    # ``size_bytes`` counts the tables retention and the size cap act on; the rollups
    # and summaries the views read come on top of them on disk.
    tables = ch._fetch(
        "SELECT table, sum(bytes_on_disk) AS bytes FROM system.parts"
        " WHERE active AND database = {db:String} GROUP BY table ORDER BY bytes DESC",
        {"db": ch._connection.database},
    )
    ch.close()

    duck = sizes["DuckDB (as served)"]
    print(f"\nchDB ÷ DuckDB (as served): {sizes['chDB'] / duck:.2f}×")
    spans_only = sizes["DuckDB (spans and indexes only)"]
    print(f"chDB ÷ DuckDB (spans only): {sizes['chDB'] / spans_only:.2f}×")
    ratio = lookups["chDB"] / lookups["DuckDB (as served)"]
    print(f"trace by id, chDB ÷ DuckDB (as served): {ratio:.1f}×")
    print("\nchDB columns taking the most (compressed):")
    for table, column, size in columns:
        print(f"  {table}.{column:<16} {int(size) / spans:>6.1f} B/span")
    skip, primary = indexes[0]
    print(f"  skip indexes        {int(skip or 0) / spans:>6.1f} B/span")
    print(f"  primary key (RAM)   {int(primary or 0) / spans:>6.2f} B/span")
    every = sum(int(size) for _, size in tables)
    print(
        f"\nchDB, every table (rollups and summaries included): {every / spans:.1f} B/span,"
        f" {every / duck:.2f}× DuckDB (as served); the largest:"
    )
    for table, size in tables[:TOP_COLUMNS]:
        print(f"  {table:<28} {int(size) / spans:>6.1f} B/span")


if __name__ == "__main__":
    main()
