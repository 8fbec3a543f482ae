"""How long a DuckDB store takes to open, and whether that grows with its spans.

    cd bench && PYTHONPATH=<build>/src:. python3 store_open.py --spans 1000000
    cd bench && PYTHONPATH=<build>/src:. python3 store_open.py --db /tmp/e10m.duckdb

``--spans N``: writes a store of N spans (``analysis.BATCH_SPANS`` a batch, through
``write()``) whose every span carries a resource of its own, as a sender that puts a
request id into its resource makes them: the case where anything read from the spans'
distinct resources at open grows with the store. ``--db PATH``: copies that store
first (an older schema is upgraded by one untimed open of the copy), so it is left as
it was. Then opens and closes the store ``--repeat`` times and prints the fastest and
the median open. Run the same command with two builds on ``PYTHONPATH`` to compare
them; each build writes (or upgrades) its own copy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from analysis import BATCH_SPANS
from threadline.server.batch import SPAN_SCHEMA, SpanBatch
from threadline.server.storage.duckdb import DuckDBStore

START_NS = 1_790_000_000 * 1_000_000_000


def per_request_resources(path: Path, spans: int) -> None:
    """A store of ``spans`` one-span traces, each with a resource no other span has."""
    store = DuckDBStore(path)
    try:
        for offset in range(0, spans, BATCH_SPANS):
            count = min(BATCH_SPANS, spans - offset)
            store.write(SpanBatch(_batch(offset, count))).result(timeout=120)
    finally:
        store.close()


def _batch(offset: int, count: int) -> pa.Table:
    numbers = range(offset, offset + count)
    starts = [START_NS + n * 1_000_000 for n in numbers]
    columns: dict[str, list[object]] = {field.name: [None] * count for field in SPAN_SCHEMA}
    columns.update(
        trace_id=[f"{n + 1:032x}" for n in numbers],
        span_id=[f"{n + 1:016x}" for n in numbers],
        service_name=["web"] * count,
        name=["GET /"] * count,
        kind=["SERVER"] * count,
        start_ns=starts,
        end_ns=[start + 5_000_000 for start in starts],
        duration_ns=[5_000_000] * count,
        status=["UNSET"] * count,
        status_message=[""] * count,
        attributes=["{}"] * count,
        resource=[json.dumps({"service.name": "web", "request.id": f"r{n}"}) for n in numbers],
        events=["[]"] * count,
        links=["[]"] * count,
        scope_name=["bench"] * count,
    )
    return pa.table(columns, schema=SPAN_SCHEMA)


def timed_opens(path: Path, repeat: int) -> list[float]:
    """Milliseconds of each open of the store at ``path`` (closed again between)."""
    DuckDBStore(path).close()  # an upgrade, if any, and a warm file cache
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        store = DuckDBStore(path)
        timings.append((time.perf_counter() - started) * 1000)
        store.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spans", type=int, help="write a store of this many spans")
    source.add_argument("--db", type=Path, help="open a copy of this store")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.repeat < 1 or (args.spans is not None and args.spans < 1):
        parser.error("--repeat and --spans must be at least 1")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spans.duckdb"
        if args.db is not None:
            shutil.copyfile(args.db, path)
            described = f"a copy of {args.db}"
        else:
            started = time.perf_counter()
            per_request_resources(path, args.spans)
            seconds = time.perf_counter() - started
            described = f"{args.spans:,} spans, each with a resource of its own ({seconds:.1f} s)"
        timings = timed_opens(path, args.repeat)
    print(f"store: {described}")
    print(
        f"open: fastest {min(timings):.1f} ms, median {statistics.median(timings):.1f} ms"
        f" of {args.repeat}"
    )


if __name__ == "__main__":
    main()
