"""What each set of rollups costs at ingest: the same spans written three ways.

    cd bench && python3 rollup_ingest.py                  # 200,000 spans, 2 rounds
    cd bench && python3 rollup_ingest.py --spans 100000 --rounds 3

The analysis benchmark's shop (``analysis_workload.py``), sorted by start time as
live traffic arrives, generated up front so only writing is timed, is written
into a new DuckDB store with no rollups (``rollups=False``), with the fleet-view
rollups of schema version 3 only (the version-5 counts, ``health_rollups.count``,
replaced by a no-op), and with both. Rounds alternate the three so a busy machine
slows each alike; the medians and their ratio to no rollups are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

# Run as a script, so this directory is on sys.path and its modules import.
from analysis import load, shop_batches
from threadline.server.storage.duckdb import DuckDBStore, health_rollups

MODES: Final = ("no rollups", "version 3", "versions 3 and 5")


def _skip(*_: object) -> None:
    """The version-5 counts left out."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not 1000 <= args.spans <= 5_000_000 or not 1 <= args.rounds <= 10:
        parser.error("--spans must be 1,000 to 5,000,000 and --rounds 1 to 10")
    batches = list(shop_batches(args.spans, time.time_ns(), time_ordered=True))
    count: Callable[..., None] = health_rollups.count
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for _ in range(args.rounds):
            for mode in MODES:
                health_rollups.count = count if mode == MODES[2] else _skip  # type: ignore[assignment]
                with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
                    store = DuckDBStore(Path(tmp) / "spans.duckdb", rollups=mode != MODES[0])
                    try:
                        written, seconds = load(store, batches)
                    finally:
                        store.close()
                rates[mode].append(written / seconds)
    finally:
        health_rollups.count = count
    base = statistics.median(rates[MODES[0]])
    print(f"{args.spans:,} spans sorted by start, {args.rounds} rounds (spans/s)")
    for mode in MODES:
        median = statistics.median(rates[mode])
        runs = ", ".join(f"{rate:,.0f}" for rate in rates[mode])
        print(f"{mode:<18} median {median:>10,.0f}   ×{median / base:.2f}   ({runs})")


if __name__ == "__main__":
    main()
