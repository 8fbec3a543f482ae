"""How fast this machine is, in two fixed workloads: read beside any figure in ms.

    python bench/machine_speed.py

The goals in milliseconds (fleet views under 300 ms at 10M spans) and the capacities
in spans/s hold for "these machines", and machines of the same kind differ: the same
commit has timed reads 2.5× apart on two of them. The figures here let a reader tell
a slower run from a slower machine. Both are single-threaded and bounded:

- **Python**: building and summing a 2,000,000-item list of small tuples, the kind of
  work that reading spans into records and walking trace trees does;
- **DuckDB**: one thread hashing and grouping 20,000,000 generated rows, the kind of
  work a fleet view's scan does.

Each is run once to warm up, then ``--repeat`` times, and the fastest printed (the
least disturbed run).
"""

from __future__ import annotations

import argparse
import os
from typing import Final

import duckdb

# Run as a script, so this directory is on sys.path and the other benchmarks import.
from slo import timed

PYTHON_ITEMS: Final = 2_000_000
DUCKDB_ROWS: Final = 20_000_000


def python_reference() -> None:
    rows = [(n, n % 97, str(n % 13)) for n in range(PYTHON_ITEMS)]
    total = 0
    for number, bucket, _ in rows:
        total += number * bucket
    assert total > 0


def duckdb_reference(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        f"SELECT count(DISTINCT k), sum(v) FROM (SELECT hash(i) % 100000 AS k, i % 7 AS v"
        f" FROM range({DUCKDB_ROWS}) AS t(i))"
    ).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    connection = duckdb.connect(":memory:")
    connection.execute("SET threads = 1")
    python_s, _ = timed(python_reference, args.repeat)
    duckdb_s, _ = timed(lambda: duckdb_reference(connection), args.repeat)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Python reference ({PYTHON_ITEMS:,} tuples built and summed): {python_s * 1e3:.1f} ms")
    print(
        f"DuckDB reference ({DUCKDB_ROWS:,} rows hashed and grouped, 1 thread):"
        f" {duckdb_s * 1e3:.1f} ms"
    )
    print(f"fastest of {args.repeat}; load average {load} on {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
