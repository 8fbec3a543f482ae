"""Where an ingest commit's time goes: each statement of the writer's transaction, timed.

    python bench/ingest_profile.py --stored 200000 --spans 10000 --commits 5

Loads ``--stored`` spans of the analysis benchmark's shop (sorted by start, as live
traffic arrives) into a fresh ``DuckDBStore``, then writes ``--commits`` more batches of
``--spans`` spans one at a time (one batch per commit) while timing every statement
the writer runs. Prints each statement's median milliseconds per commit, with its
share of the commit, largest first. Bounded: ``--stored + --commits × --spans`` spans.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis import BATCH_SPANS, load, shop_batches
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, writer


def _label(sql: str) -> str:
    words = " ".join(sql.split())
    return words[:110]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--spans", type=int, default=BATCH_SPANS)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument(
        "--no-rollups", action="store_true", help="profile a store keeping no rollups"
    )
    args = parser.parse_args()
    total = args.stored + args.spans * args.commits
    batches = list(shop_batches(total, 1_764_000_000_000_000_000, time_ordered=True))
    first, rest = batches[: args.stored // BATCH_SPANS], batches[args.stored // BATCH_SPANS :]
    timings: dict[str, list[float]] = defaultdict(list)
    commits: list[float] = []
    original = writer.GroupCommitWriter._in_transaction

    def timed_transaction(self: writer.GroupCommitWriter, task: writer.Task) -> Any:
        connection = self._connection

        def run(sql: str, params: Sequence[object]) -> list[Any]:
            started = time.perf_counter()
            rows = connection.execute(sql, params).fetchall()
            timings[_label(sql)].append(time.perf_counter() - started)
            return rows

        started = time.perf_counter()
        connection.execute("BEGIN TRANSACTION")
        result = task(run)
        connection.execute("COMMIT")
        commits.append(time.perf_counter() - started)
        return result

    with tempfile.TemporaryDirectory(prefix="threadline-profile-") as scratch:
        store = DuckDBStore(Path(scratch) / "profile.duckdb", rollups=not args.no_rollups)
        try:
            load(store, first)
            table = SpanBatch.concat(rest).table
            writer.GroupCommitWriter._in_transaction = timed_transaction  # type: ignore[method-assign]
            for offset in range(0, table.num_rows, args.spans):
                store.write(SpanBatch(table.slice(offset, args.spans))).result()
        finally:
            writer.GroupCommitWriter._in_transaction = original  # type: ignore[method-assign]
            store.close()
    commit_ms = statistics.median(commits) * 1000
    print(
        f"{'without' if args.no_rollups else 'with'} rollups:"
        f" {len(commits)} commits of {args.spans:,} spans at {args.stored:,} stored:"
        f" median {commit_ms:.1f} ms a commit ({args.spans / commit_ms * 1000:,.0f} spans/s)"
    )
    per_commit = {label: sum(runs) / len(commits) * 1000 for label, runs in timings.items()}
    for label, ms in sorted(per_commit.items(), key=lambda item: -item[1]):
        print(f"{ms:8.1f} ms {ms / commit_ms:6.1%}  {label}")


if __name__ == "__main__":
    main()
