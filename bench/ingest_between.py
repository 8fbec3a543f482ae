"""Ingest throughput of two checkouts of Threadline, alternately, on the same workload.

    python bench/ingest_between.py /path/to/old /path/to/new --spans 200000 --rounds 3
    python bench/ingest_between.py . . --old-without-rollups  # the issue's ratio

The analysis benchmark's shop (``analysis.shop_batches``, sorted by start as live
traffic arrives) is generated once, by this checkout, into an Arrow file. Each round
then loads it into a fresh ``DuckDBStore`` of each checkout, in a process of its own
(``PYTHONPATH`` set to that checkout's ``src``, no bytecode written into it), through
``write()`` batches of ``analysis.BATCH_SPANS`` with ``analysis.IN_FLIGHT`` pending, and
prints spans/s; then the ratio new ÷ old of the sums. A checkout needs only
``SpanBatch(table)`` and ``DuckDBStore(path).write(batch)`` with today's span columns,
so the old side may be a release from before the rollups (the ingest a goal of "0.8×
of today's" was set against). Alternating rounds spread the machine's changing load
over both; the median of the rounds' ratios is printed with their range.
``--old-without-rollups`` makes the old side's store ``DuckDBStore(rollups=False)``, so
one checkout given twice prints ingest with rollups against a store keeping none.
Bounded: ``--rounds`` loads of ``--spans`` spans each, each load stopped after
``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

import pyarrow as pa

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis import BATCH_SPANS, IN_FLIGHT, shop_batches

# What each checkout runs: the shop from the Arrow file, written as ``analysis.load``
# writes it; argv: the file, "default" or "none" (no rollups), batch spans, in flight.
LOAD: Final = """
import sys, tempfile, time
from collections import deque
from pathlib import Path
import pyarrow as pa
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore
with pa.memory_map(sys.argv[1]) as source:
    table = pa.ipc.open_file(source).read_all()
size, in_flight = int(sys.argv[3]), int(sys.argv[4])
batches = [SpanBatch(table.slice(offset, size)) for offset in range(0, table.num_rows, size)]
options = {} if sys.argv[2] == "default" else {"rollups": False}
with tempfile.TemporaryDirectory() as scratch:
    store = DuckDBStore(Path(scratch) / "ingest.duckdb", **options)
    pending = deque()
    started = time.perf_counter()
    for batch in batches:
        pending.append(store.write(batch))
        while len(pending) >= in_flight:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    seconds = time.perf_counter() - started
    store.close()
print(table.num_rows / seconds)
"""


def write_shop(path: Path, spans: int) -> None:
    """The time-ordered shop of ``spans`` spans, as one Arrow file."""
    batches = list(shop_batches(spans, 1_764_000_000_000_000_000, time_ordered=True))
    table = pa.concat_tables([batch.table for batch in batches])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def spans_per_second(checkout: Path, shop: Path, timeout_s: float, *, rollups: bool) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    store = "default" if rollups else "none"
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(shop), store, str(BATCH_SPANS), str(IN_FLIGHT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--old-without-rollups",
        action="store_true",
        help="load the old side into a store keeping no rollups",
    )
    args = parser.parse_args()
    totals = {"old": 0.0, "new": 0.0}
    ratios = []
    with tempfile.TemporaryDirectory(prefix="threadline-between-") as scratch:
        shop = Path(scratch) / "shop.arrow"
        write_shop(shop, args.spans)
        for round_number in range(1, args.rounds + 1):
            rates = {}
            for name in ("old", "new"):
                rollups = name == "new" or not args.old_without_rollups
                checkout = getattr(args, name)
                rate = spans_per_second(checkout, shop, args.timeout, rollups=rollups)
                rates[name] = rate
                totals[name] += rate
                print(f"round {round_number} {name}: {rate:,.0f} spans/s")
            ratios.append(rates["new"] / rates["old"])
    print(
        f"new ÷ old: {totals['new'] / totals['old']:.2f}x of the sums; per round median"
        f" {statistics.median(ratios):.2f}x (range {min(ratios):.2f}–{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
