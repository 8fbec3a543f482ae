"""What keeping a summary row per trace costs a commit: appended deltas against upserts.

    cd bench && python3 trace_summaries.py                  # 200,000 spans stored first
    cd bench && python3 trace_summaries.py --spans 1000000

Loads the analysis shop (``analysis_workload.py``) sorted by start, as live traffic
arrives, into a store, then times, for the next batches of the same shop, in
transactions that are rolled back so every run sees the same table:

- ``append``: the statement the writer runs (``summaries.add``): one delta row per
  trace of the batch, appended;
- ``upsert``: the same delta rows merged into a copy of the table keyed by trace id
  (``INSERT ... ON CONFLICT (trace_id) DO UPDATE``, every column merged), the
  alternative, which needs no fold;
- ``fold``: merging the rows of ``--commits`` appended batches into one per trace
  (``summaries.fold``, run every 64 commits by the writer), per commit.

Prints the fastest and median of ``--repeat`` runs of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from analysis_workload import generate
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, summaries
from threadline.server.storage.duckdb.sql import Row

HOUR_NS: Final = 3600 * 1_000_000_000
BATCH_SPANS: Final = 10_000
_BATCH: Final = "bench_batch"
_KEYED: Final = "bench_keyed_summaries"

# The same delta rows merged into a table keyed by trace id, column by column.
_MERGE: Final = {
    "start_ns": "least(start_ns, excluded.start_ns)",
    "end_ns": "greatest(end_ns, excluded.end_ns)",
    "last_start_ns": "greatest(last_start_ns, excluded.last_start_ns)",
    "root": "least(root, excluded.root)",
    "spans": "spans + excluded.spans",
    "errors": "errors + excluded.errors",
    **{
        name: f"list_distinct(list_concat({name}, excluded.{name}))"
        for name in ("services", "operations", "sessions", "users")
    },
}
_UPSERT: Final = (
    f"INSERT INTO {_KEYED} ({summaries.VALUE_COLUMNS}) {summaries.delta(_BATCH)}"
    " ON CONFLICT (trace_id) DO UPDATE SET "
    + ", ".join(f"{name} = {merged}" for name, merged in _MERGE.items())
)


def rolled_back(connection: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> float:
    connection.execute("BEGIN TRANSACTION")
    started = time.perf_counter()
    try:
        work()
        return time.perf_counter() - started
    finally:
        connection.execute("ROLLBACK")


def report(name: str, runs: Sequence[float]) -> None:
    print(f"{name:<44}{min(runs) * 1000:>10.1f}{statistics.median(runs) * 1000:>11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--commits", type=int, default=8, help="batches appended before a fold")
    args = parser.parse_args()
    end_ns = time.time_ns()
    total = args.spans + (args.commits + 1) * BATCH_SPANS
    batches = generate(total, end_ns=end_ns, window_ns=HOUR_NS, sessions=20_000, batch_spans=10_000)
    table = pa.concat_tables([b.table for b in batches]).sort_by("start_ns")
    stored, later = table.slice(0, args.spans), table.slice(args.spans)
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        path = Path(tmp) / "summaries.duckdb"
        store = DuckDBStore(path)
        try:
            for offset in range(0, stored.num_rows, BATCH_SPANS):
                store.write(SpanBatch(stored.slice(offset, BATCH_SPANS))).result()
            store.compact_rollups()
        finally:
            store.close()
        connection = duckdb.connect(str(path))

        def run(sql: str, params: Sequence[object]) -> list[Row]:
            return connection.execute(sql, params).fetchall()

        connection.execute(
            f"CREATE TABLE {_KEYED} AS SELECT {summaries.VALUE_COLUMNS} FROM {summaries.SUMMARIES}"
        )
        connection.execute(f"ALTER TABLE {_KEYED} ADD PRIMARY KEY (trace_id)")
        traces = connection.execute(f"SELECT count(*) FROM {_KEYED}").fetchall()[0][0]
        print(
            f"{args.spans:,} spans stored ({traces:,} traces); batches of {BATCH_SPANS:,} spans"
            " sorted by start"
        )
        print(f"{'per commit':<44}{'fastest ms':>10}{'median ms':>11}")
        batch = later.slice(0, BATCH_SPANS)
        connection.register(_BATCH, batch)
        report(
            "append (summaries.add)",
            [
                rolled_back(connection, lambda: summaries.add(run, _BATCH))
                for _ in range(args.repeat)
            ],
        )
        report(
            "upsert on a trace id key",
            [rolled_back(connection, lambda: run(_UPSERT, [])) for _ in range(args.repeat)],
        )
        connection.unregister(_BATCH)

        def append_then_fold() -> None:
            for n in range(args.commits):
                connection.register(_BATCH, later.slice((n + 1) * BATCH_SPANS, BATCH_SPANS))
                summaries.add(run, _BATCH)
                connection.unregister(_BATCH)
            started = time.perf_counter()
            summaries.fold(run)
            folds.append((time.perf_counter() - started) / args.commits)

        folds: list[float] = []
        for _ in range(args.repeat):
            rolled_back(connection, append_then_fold)
        report(f"fold, per commit ({args.commits} commits folded)", folds)
        connection.close()


if __name__ == "__main__":
    main()
