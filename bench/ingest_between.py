"""Ingest throughput of two checkouts of Threadline, alternately, on the same workload.

    python bench/ingest_between.py /path/to/old /path/to/new --spans 200000 --rounds 3
    python bench/ingest_between.py . . --old-without-rollups  # the issue's ratio

Each round loads the analysis benchmark's shop (``analysis.shop_batches``, sorted by
start as live traffic arrives) into a fresh ``DuckDBStore`` of each checkout, in a
process of its own (``PYTHONPATH`` set to that checkout's ``src`` and ``bench``, no
bytecode written into it), and prints spans/s; then the ratio new ÷ old of the sums.
Alternating rounds spread the machine's changing load over both; the median of the
rounds' ratios is printed with their range. ``--old-without-rollups`` makes the old
side's store ``DuckDBStore(rollups=False)``, so one checkout given twice prints
ingest with rollups against a store keeping none. Bounded: ``--rounds``
loads of ``--spans`` spans each, each load stopped after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Final

LOAD: Final = """
import sys, tempfile, time
from pathlib import Path
from analysis import shop_batches, load
from threadline.server.storage.duckdb import DuckDBStore
batches = list(shop_batches(int(sys.argv[1]), 1_764_000_000_000_000_000, time_ordered=True))
with tempfile.TemporaryDirectory() as scratch:
    store = DuckDBStore(Path(scratch) / "ingest.duckdb", rollups=sys.argv[2] == "rollups")
    written, seconds = load(store, batches)
    store.close()
print(written / seconds)
"""


def spans_per_second(checkout: Path, spans: int, timeout_s: float, *, rollups: bool) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": f"{checkout / 'src'}{os.pathsep}{checkout / 'bench'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(spans), "rollups" if rollups else "none"],
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
    for round_number in range(1, args.rounds + 1):
        rates = {}
        for name in ("old", "new"):
            rollups = name == "new" or not args.old_without_rollups
            rate = spans_per_second(getattr(args, name), args.spans, args.timeout, rollups=rollups)
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
