"""Schema versions: what an upgrade costs at open, and why start time has no index.

    python bench/schema.py --spans 200000

In one run, on this machine, with the real ``DuckDBStore``:

  (a) opening a version-1 file of ``--spans`` spans (upgraded to the newest version
      on open) against opening the same file already upgraded;
  (b) spans/s appended (batches of 5,000 spans, 20 per trace, in time order) into
      today's schema and into today's schema plus an ART index on ``start_ns``, the
      index a time-window schema step could add; then on both files the newest 20
      traces of the last 1% of the time range (a trace search with ``start``), and
      deleting the oldest 10% (retention), each against the file without the index.

Each variant runs ``--rounds`` times, alternating, and the best round is printed:
the machine is shared, and the best round is the least disturbed one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import duckdb

from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore

BATCH_SPANS: Final = 5_000
SPANS_PER_TRACE: Final = 20
SPAN_SPACING_NS: Final = 1_000_000  # one span per ms: 200k spans cover ~3 minutes
SEARCHES: Final = 20
WRITE_TIMEOUT_S: Final = 120.0
EPOCH_NS: Final = 1_767_225_600_000_000_000


def batches(total: int) -> list[SpanBatch]:
    made: list[SpanBatch] = []
    for first in range(0, total, BATCH_SPANS):
        records = [
            SpanRecord(
                trace_id=f"{n // SPANS_PER_TRACE:032x}",
                span_id=f"{n:016x}",
                parent_span_id=None if n % SPANS_PER_TRACE == 0 else f"{n - n % 20:016x}",
                service_name=("gateway", "checkout", "payments")[n % 3],
                name=f"op {n % 7}",
                kind=SpanKind.SERVER,
                start_ns=EPOCH_NS + n * SPAN_SPACING_NS,
                end_ns=EPOCH_NS + n * SPAN_SPACING_NS + 5_000_000,
                session_id=f"session-{n // 400}",
                user_id=f"user-{n // 2000}",
                attributes={"http.route": f"/route/{n % 11}", "n": n},
            )
            for n in range(first, min(total, first + BATCH_SPANS))
        ]
        made.append(SpanBatch.from_records(records))
    return made


def fill(db: Path, data: list[SpanBatch], *, start_index: bool) -> float:
    """Spans/s appending ``data`` to a new store at ``db`` (with or without the index)."""
    DuckDBStore(db).close()
    if start_index:
        with duckdb.connect(str(db)) as connection:
            connection.execute("CREATE INDEX spans_start_ns ON spans (start_ns)")
    store = DuckDBStore(db)
    try:
        started = time.perf_counter()
        futures = [store.write(batch) for batch in data]
        for future in futures:
            future.result(timeout=WRITE_TIMEOUT_S)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    return sum(len(batch) for batch in data) / elapsed


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def reads(db: Path, total: int) -> tuple[float, float]:
    """(ms per recent-window trace search, ms to delete the oldest 10%) on ``db``."""
    store = DuckDBStore(db)
    try:
        recent = TraceQuery(start_ns=EPOCH_NS + total * 99 // 100 * SPAN_SPACING_NS, limit=20)
        search_s = timed(lambda: [store.search_traces(recent) for _ in range(SEARCHES)])
        cutoff = EPOCH_NS + total // 10 * SPAN_SPACING_NS
        delete_s = timed(lambda: store.delete_older_than(cutoff))
    finally:
        store.close()
    return search_s / SEARCHES * 1000, delete_s * 1000


def make_version_1(db: Path, data: list[SpanBatch]) -> None:
    """A file laid out as version 1 (spans and indexes, no version table)."""
    fill(db, data, start_index=False)
    with duckdb.connect(str(db)) as connection:
        connection.execute("DROP TABLE threadline_schema")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    data = batches(options.spans)
    best: dict[str, float] = {}

    def keep(name: str, value: float, *, higher_is_better: bool = False) -> None:
        if name not in best or (value > best[name]) == higher_is_better:
            best[name] = value

    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(options.rounds):
            directory = Path(scratch) / str(round_number)
            directory.mkdir()
            old = directory / "v1.duckdb"
            make_version_1(old, data)
            keep("upgrade_open_s", timed(lambda: DuckDBStore(old).close()))  # noqa: B023
            keep("plain_open_s", timed(lambda: DuckDBStore(old).close()))  # noqa: B023
            for start_index in (False, True):
                name = "indexed" if start_index else "plain"
                db = directory / f"{name}.duckdb"
                keep(
                    f"{name}_ingest", fill(db, data, start_index=start_index), higher_is_better=True
                )
                search_ms, delete_ms = reads(db, options.spans)
                keep(f"{name}_search_ms", search_ms)
                keep(f"{name}_delete_ms", delete_ms)

    print(f"spans: {options.spans:,}; best of {options.rounds} rounds")
    print(
        f"(a) open a version-1 file (upgrading it): {best['upgrade_open_s'] * 1000:.1f} ms; "
        f"open it again (up to date): {best['plain_open_s'] * 1000:.1f} ms"
    )
    print(
        f"(b) ingest: {best['plain_ingest']:,.0f} spans/s; with a start_ns index "
        f"{best['indexed_ingest']:,.0f} spans/s "
        f"(ratio {best['indexed_ingest'] / best['plain_ingest']:.2f})"
    )
    print(
        f"    recent-window search: {best['plain_search_ms']:.2f} ms; with the index "
        f"{best['indexed_search_ms']:.2f} ms "
        f"(ratio {best['indexed_search_ms'] / best['plain_search_ms']:.2f})"
    )
    print(
        f"    delete oldest 10%: {best['plain_delete_ms']:.0f} ms; with the index "
        f"{best['indexed_delete_ms']:.0f} ms "
        f"(ratio {best['indexed_delete_ms'] / best['plain_delete_ms']:.2f})"
    )


if __name__ == "__main__":
    main()
