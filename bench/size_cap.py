"""The size cap with nothing arriving: how many spans each retention run deletes.

    python bench/size_cap.py                          # 400,000 spans, cap 40/45.6 of the size
    python bench/size_cap.py --spans 20000 --runs 8   # a store of one row group

Writes the analysis shop (``analysis_workload.py``) into a DuckDBStore in a temporary
directory, measures it (``size_bytes``), sets ``max_db_bytes`` to ``--cap-ratio`` of
that and runs ``retention.enforce`` ``--runs`` times with no new spans. A cap that
measures what deleting frees takes the store just under the cap on the first run and
deletes nothing after; one that measures wrongly deletes on every run. Prints, per run:
spans deleted, spans left, the measured size and the file's size, and the time taken;
then the time of one more rewrite (``compact``, what an erasure does) of what is left.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Final

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis_workload import generate
from threadline.server.retention import RetentionPolicy, enforce
from threadline.server.storage.duckdb import DuckDBStore

HOUR_NS: Final = 3600 * 10**9
SESSIONS: Final = 2000
BATCH_SPANS: Final = 5000
# The cap of the case this measures: a 45.6 MB store under a 40 MB cap.
CAP_RATIO: Final = 40 / 45.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--cap-ratio", type=float, default=CAP_RATIO)
    args = parser.parse_args()
    now = time.time_ns()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spans.duckdb"
        store = DuckDBStore(path)
        try:
            for batch in generate(
                args.spans,
                end_ns=now,
                window_ns=HOUR_NS,
                sessions=SESSIONS,
                batch_spans=BATCH_SPANS,
            ):
                store.write(batch).result()
            total = store.counts().spans
            size = store.size_bytes()
            cap = int(size * args.cap_ratio)
            print(f"{total} spans, {size} bytes measured, cap {cap} bytes")
            policy = RetentionPolicy(max_bytes=cap)
            for run in range(1, args.runs + 1):
                started = time.perf_counter()
                deleted = enforce(store, policy, now).by_size
                seconds = time.perf_counter() - started
                left = store.counts().spans
                print(
                    f"run {run}: deleted {deleted} spans, {left} left "
                    f"({100 * (total - left) / total:.1f}% lost), measured "
                    f"{store.size_bytes()} bytes (cap {cap}), file {path.stat().st_size} bytes, "
                    f"{seconds:.1f} s"
                )
            started = time.perf_counter()
            store.compact()
            print(f"one rewrite of {left} spans: {time.perf_counter() - started:.1f} s")
        finally:
            store.close()


if __name__ == "__main__":
    main()
