"""Where the writer's upkeep goes on a large store: folds and tail-sampling deletes,
each statement timed.

    cd bench && PYTHONPATH=../src:. python3 writer_upkeep.py --db /tmp/b10m.duckdb

Copies a store ``analysis.py --db`` (or ``trace_groups.py --db``) kept, so the store
itself is left as it was, then:

- **folds**: writes ``--folds`` batches of ``analysis.BATCH_SPANS`` spans of new traces
  (the shop's, drawn with another seed, over the ``--minutes`` after the store's end and
  sorted by start as live traffic arrives; the sessions are the shop's, so their
  journeys go on) and folds after each, as the writer does every
  ``rollups.COMPACT_EVERY`` commits;
- **deletes**: then deletes ``--deletes`` times ``--traces`` of the newest traces, as
  tail sampling deletes the traces it drops (``Store.delete_traces``).

For each, prints the median (a fold with the checkpoint after it) and each statement's
median, largest first (the checkpoint as ``CHECKPOINT``): the statements that read a
table whole grow with the store; those bounded by their traces' times do not. A fold
of one batch is the smallest a fold can be: the writer's own fold every 64 commits
holds more, and its statements bounded by time read more with it, the others the same.
Bounded: ``--folds`` batches and ``--deletes`` deletes. ``--keep`` leaves the copy.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from analysis import BATCH_SPANS, SESSIONS, analysis_end
from analysis_workload import generate
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, writer

MINUTE_NS = 60 * 1_000_000_000
Timings = dict[str, list[float]]


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
    parser.add_argument("--deletes", type=int, default=7, help="deletes of the newest traces")
    parser.add_argument("--traces", type=int, default=200, help="traces each delete drops")
    parser.add_argument("--top", type=int, default=20, help="statements printed for each")
    parser.add_argument("--keep", type=Path, help="copy the store here and leave it")
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"{args.db} does not exist; keep one with analysis.py --db")
    if args.folds < 1 or args.deletes < 0 or args.traces < 1:
        parser.error("--folds and --traces must be at least 1, --deletes at least 0")
    marker = args.db.with_name(args.db.name + ".end_ns")
    end_ns = int(marker.read_text()) if marker.exists() else analysis_end(args.db)
    batches = new_batches(end_ns, args.folds, args.minutes)
    with tempfile.TemporaryDirectory(prefix="threadline-upkeep-") as scratch:
        copy = args.keep or Path(scratch) / "store.duckdb"
        shutil.copyfile(args.db, copy)
        store = DuckDBStore(copy)
        try:
            with Timed() as folds:
                for batch in batches:
                    store.write(batch).result()
                    folds.call(store.compact_rollups)
            report(f"{len(batches)} folds of {BATCH_SPANS:,} new spans", folds, args.top)
            newest = [
                str(row[0])
                for row in store._fetch(
                    "SELECT trace_id FROM trace_summaries ORDER BY start_ns DESC LIMIT ?",
                    [args.deletes * args.traces],
                )
            ]
            with Timed() as deletes:
                for first in range(0, len(newest), args.traces):
                    doomed = newest[first : first + args.traces]
                    deletes.call(lambda ids=doomed: store.delete_traces(ids))
            if args.deletes:
                report(f"{args.deletes} deletes of {args.traces} new traces", deletes, args.top)
        finally:
            store.close()
    print(f"(on a copy of {args.db})")


class Timed:
    """Within it, the writer's statements (and the checkpoint after a fold) run by
    ``call`` are timed by their first words, and each call as a whole."""

    def __init__(self) -> None:
        self.statements: Timings = defaultdict(list)
        self.calls: list[float] = []
        self._timing = False

    def call(self, work: Callable[[], object]) -> None:
        self._timing = True
        started = time.perf_counter()
        try:
            work()
        finally:
            self.calls.append(time.perf_counter() - started)
            self._timing = False

    def __enter__(self) -> Timed:
        self._transaction = writer.GroupCommitWriter._in_transaction
        self._checkpoint = writer.GroupCommitWriter._checkpoint
        timed = self
        transaction, checkpoint = self._transaction, self._checkpoint

        def timed_transaction(self: writer.GroupCommitWriter, task: writer.Task) -> Any:
            connection = self._connection

            def run(sql: str, params: Sequence[object]) -> list[Any]:
                started = time.perf_counter()
                rows = connection.execute(sql, params).fetchall()
                timed._note(" ".join(sql.split())[:96], started)
                return rows

            if not timed._timing:
                return transaction(self, task)
            run("BEGIN TRANSACTION", ())
            result = task(run)
            run("COMMIT", ())
            return result

        def timed_checkpoint(self: writer.GroupCommitWriter) -> None:
            started = time.perf_counter()
            checkpoint(self)
            timed._note("CHECKPOINT", started)

        writer.GroupCommitWriter._in_transaction = timed_transaction  # type: ignore[method-assign]
        writer.GroupCommitWriter._checkpoint = timed_checkpoint  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        writer.GroupCommitWriter._in_transaction = self._transaction  # type: ignore[method-assign]
        writer.GroupCommitWriter._checkpoint = self._checkpoint  # type: ignore[method-assign]

    def _note(self, name: str, started: float) -> None:
        if self._timing:
            self.statements[name].append(time.perf_counter() - started)


def report(title: str, timed: Timed, top: int) -> None:
    medians = {name: statistics.median(times) for name, times in timed.statements.items()}
    print(
        f"{title}: median {statistics.median(timed.calls) * 1e3:.1f} ms each, the sum of"
        f" its statements' medians {sum(medians.values()) * 1e3:.1f} ms"
    )
    for name, median in sorted(medians.items(), key=lambda item: -item[1])[:top]:
        print(f"  {median * 1e3:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
