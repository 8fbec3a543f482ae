"""Where an ingest commit's time goes: each statement of the writer's transaction, timed.

    python bench/ingest_profile.py --stored 200000 --spans 10000 --commits 5

Loads ``--stored`` spans of the analysis benchmark's shop (sorted by start, as live
traffic arrives) into a fresh ``DuckDBStore``, then writes ``--commits`` more batches of
``--spans`` spans one at a time (one batch per commit) while timing every statement
the writer runs, ``COMMIT`` among them (when DuckDB writes the group to its log).
Prints the median and the mean commit (the mean with the commits that also folded or
checkpointed), then each statement's median milliseconds, with its share of the median
commit, largest first. Bounded: ``--stored + --commits × --spans`` spans.

The CPU a commit takes (the process's, DuckDB's threads included) is printed beside its
time; ``--threads N`` sets DuckDB's threads for the store (its default: one per core).

``--plans`` also has DuckDB profile each statement and prints, beside its time, the
part spent before it ran: binding, optimising and physical planning (the ``planner``,
``optimizer`` and ``physical_planner`` totals of its detailed JSON profile). That part
does not grow with the batch, so it is what a commit costs however few spans it holds.
Profiling adds its own cost to each statement, so times are higher in that mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from analysis import BATCH_SPANS, load, shop_batches
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, writer

# The phases of DuckDB's detailed profile that come before execution.
PLANNING: Final = ("planner", "optimizer", "physical_planner")
# Statements DuckDB writes no profile for.
UNPROFILED: Final = ("BEGIN", "COMMIT", "DROP")


def _profiled(
    connection: Any, output: Path, sql: str, params: Sequence[object]
) -> tuple[list[Any], float]:
    """The rows of ``sql``, run once with DuckDB's detailed profile on, and the seconds
    its profile spent before execution (0 for a statement DuckDB does not profile)."""
    output.unlink(missing_ok=True)
    connection.execute("SET enable_profiling = 'json'")
    connection.execute("SET profiling_mode = 'detailed'")
    connection.execute(f"SET profiling_output = '{output}'")
    try:
        rows = connection.execute(sql, params).fetchall()
    finally:
        connection.execute("SET enable_profiling = 'no_output'")
    if not output.exists():
        return rows, 0.0
    profile = json.loads(output.read_text())
    planning = sum(float(profile[phase]["total_time"]) for phase in PLANNING if phase in profile)
    return rows, planning


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
    parser.add_argument(
        "--plans", action="store_true", help="also print each statement's planning time"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="DuckDB's threads (default: one per core)"
    )
    args = parser.parse_args()
    total = args.stored + args.spans * args.commits
    batches = list(shop_batches(total, 1_764_000_000_000_000_000, time_ordered=True))
    first, rest = batches[: args.stored // BATCH_SPANS], batches[args.stored // BATCH_SPANS :]
    timings: dict[str, list[float]] = defaultdict(list)
    plans: dict[str, list[float]] = defaultdict(list)
    commits: list[float] = []
    cpu: list[float] = []
    original = writer.GroupCommitWriter._in_transaction

    def timed_transaction(self: writer.GroupCommitWriter, task: writer.Task) -> Any:
        connection = self._connection

        def run(sql: str, params: Sequence[object]) -> list[Any]:
            started = time.perf_counter()
            if args.plans and not sql.lstrip().startswith(UNPROFILED):
                rows, planning = _profiled(connection, Path(scratch) / "profile.json", sql, params)
                plans[_label(sql)].append(planning)
            else:
                rows = connection.execute(sql, params).fetchall()
            timings[_label(sql)].append(time.perf_counter() - started)
            return rows

        started, cpu_started = time.perf_counter(), time.process_time()
        run("BEGIN TRANSACTION", ())
        result = task(run)
        run("COMMIT", ())
        commits.append(time.perf_counter() - started)
        # The process's CPU, DuckDB's threads included; nothing else runs meanwhile.
        cpu.append(time.process_time() - cpu_started)
        return result

    with tempfile.TemporaryDirectory(prefix="threadline-profile-") as scratch:
        store = DuckDBStore(Path(scratch) / "profile.duckdb", rollups=not args.no_rollups)
        if args.threads:
            store._connection.execute(f"SET threads = {args.threads}")
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
    mean_ms = statistics.fmean(commits) * 1000
    print(
        f"{'without' if args.no_rollups else 'with'} rollups:"
        f" {len(commits)} commits of {args.spans:,} spans at {args.stored:,} stored:"
        f" median {commit_ms:.1f} ms a commit ({args.spans / commit_ms * 1000:,.0f} spans/s),"
        f" mean {mean_ms:.1f} ms (folds and checkpoints included);"
        f" CPU {statistics.median(cpu) * 1000:.1f} ms a commit (median)"
    )
    # Medians, so a commit that also checkpointed does not hide where a typical one goes.
    per_commit = {label: statistics.median(runs) * 1000 for label, runs in timings.items()}
    if args.plans:
        planned = sum(statistics.median(runs) for runs in plans.values()) * 1000
        print(f"planning (binding, optimising, physical plans): {planned:.1f} ms a commit")
    for label, ms in sorted(per_commit.items(), key=lambda item: -item[1]):
        planned_ms = statistics.median(plans[label]) * 1000 if plans.get(label) else 0.0
        planning = f" plan {planned_ms:5.1f} ms" if args.plans else ""
        print(f"{ms:8.1f} ms {ms / commit_ms:6.1%}{planning}  {label}")


if __name__ == "__main__":
    main()
