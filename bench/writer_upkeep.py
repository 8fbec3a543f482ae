"""Where a fold's time goes on a large store: each statement of the writer's folds, timed.

    cd bench && PYTHONPATH=../src:. python3 fold_cost.py --db /tmp/b10m.duckdb

Copies a store ``analysis.py --db`` (or ``trace_groups.py --db``) kept, so the store
itself is left as it was, then writes ``--folds`` batches of ``analysis.BATCH_SPANS``
spans of new traces (the shop's, drawn with another seed, over the ``--minutes`` after
the store's end and sorted by start as live traffic arrives; the sessions are the
shop's, so their journeys go on) and folds after each, as the writer does every
``rollups.COMPACT_EVERY`` commits. Prints the median fold (the checkpoint after it
included) and each statement's median, largest first: the statements that read a
table whole grow with the store; those bounded by the folded traces' times do not.

A fold of one batch is the smallest a fold can be: the writer's own fold every 64
commits holds more, and its statements bounded by time read more with it, the others
the same. Bounded: ``--folds`` batches. ``--keep`` leaves the copy for a rerun.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from analysis import BATCH_SPANS, SESSIONS, analysis_end
from analysis_workload import generate
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, writer

MINUTE_NS = 60 * 1_000_000_000


def new_batches(end_ns: int, folds: int, minutes: int) -> list[SpanBatch]:
    """``folds`` batches of new traces over the ``minutes`` after ``end_ns``, by start."""
    generated = generate(
        folds * BATCH_SPANS,
        end_ns=end_ns + minutes * MINUTE_NS,
        window_ns=minutes * MINUTE_NS,
        sessions=SESSIONS,
        batch_spans=BATCH_SPANS,
        seed=12,  # the shop is drawn with 11: other trace ids, the same sessions
    )
    table = pa.concat_tables([batch.table for batch in generated]).sort_by("start_ns")
    return [
        SpanBatch(table.slice(offset, BATCH_SPANS))
        for offset in range(0, table.num_rows, BATCH_SPANS)
    ][:folds]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a store analysis.py kept")
    parser.add_argument("--folds", type=int, default=7, help="batches written, each folded")
    parser.add_argument("--minutes", type=int, default=10, help="the new traces' span")
    parser.add_argument("--top", type=int, default=20, help="statements printed")
    parser.add_argument("--keep", type=Path, help="copy the store here and leave it")
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"{args.db} does not exist; keep one with analysis.py --db")
    if args.folds < 1:
        parser.error("--folds must be at least 1")
    marker = args.db.with_name(args.db.name + ".end_ns")
    end_ns = int(marker.read_text()) if marker.exists() else analysis_end(args.db)
    batches = new_batches(end_ns, args.folds, args.minutes)
    with tempfile.TemporaryDirectory(prefix="threadline-folds-") as scratch:
        copy = args.keep or Path(scratch) / "store.duckdb"
        shutil.copyfile(args.db, copy)
        statements, folds = measure(copy, batches)
    print(
        f"{len(folds)} folds of {BATCH_SPANS:,} new spans on a copy of {args.db}:"
        f" median {statistics.median(folds) * 1e3:.1f} ms a fold (its checkpoint included),"
        f" its statements {sum(statistics.median(t) for t in statements.values()) * 1e3:.1f} ms"
    )
    ranked = sorted(statements.items(), key=lambda item: -statistics.median(item[1]))
    for sql, times in ranked[: args.top]:
        print(f"  {statistics.median(times) * 1e3:8.1f} ms  {sql}")


def measure(path: Path, batches: Sequence[SpanBatch]) -> tuple[dict[str, list[float]], list[float]]:
    """Each fold's statements' times (by their first words) and each whole fold's."""
    statements: dict[str, list[float]] = defaultdict(list)
    folds: list[float] = []
    folding = False
    original = writer.GroupCommitWriter._in_transaction

    def timed_transaction(self: writer.GroupCommitWriter, task: writer.Task) -> Any:
        connection = self._connection

        def run(sql: str, params: Sequence[object]) -> list[Any]:
            started = time.perf_counter()
            rows = connection.execute(sql, params).fetchall()
            if folding:
                statements[" ".join(sql.split())[:96]].append(time.perf_counter() - started)
            return rows

        run("BEGIN TRANSACTION", ())
        result = task(run)
        run("COMMIT", ())
        return result

    store = DuckDBStore(path)
    writer.GroupCommitWriter._in_transaction = timed_transaction  # type: ignore[method-assign]
    try:
        for batch in batches:
            store.write(batch).result()
            folding = True
            started = time.perf_counter()
            store.compact_rollups()
            folds.append(time.perf_counter() - started)
            folding = False
    finally:
        writer.GroupCommitWriter._in_transaction = original  # type: ignore[method-assign]
        store.close()
    return statements, folds


if __name__ == "__main__":
    main()
