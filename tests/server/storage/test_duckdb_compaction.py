"""Rewriting the DuckDB store while ingest and reads go on: nothing is lost, nothing fails,
and a rewrite cut short by a crash leaves the store whole."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Final

from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.base import StoreError
from threadline.server.storage.duckdb import DuckDBStore

BATCHES: Final = 400
SPANS_PER_BATCH: Final = 50
COMPACTIONS: Final = 3
JOIN_TIMEOUT_S: Final = 60.0


def batch(n: int) -> SpanBatch:
    start = time.time_ns()
    return SpanBatch.from_records(
        SpanRecord(
            trace_id=f"{n:016x}{k:016x}",
            span_id=f"{k + 1:016x}",
            parent_span_id=None,
            service_name="checkout",
            name="POST /checkout",
            kind=SpanKind.SERVER,
            start_ns=start,
            end_ns=start + 1000,
            user_id=f"user-{n}",
        )
        for k in range(SPANS_PER_BATCH)
    )


def test_writes_and_reads_during_compaction_all_succeed(tmp_path: Path) -> None:
    """Batches written while the store is rewritten are all stored; reads all answer."""
    store = DuckDBStore(tmp_path / "spans.duckdb", max_pending_batches=BATCHES)
    futures: list[Future[None]] = []
    read_errors: list[Exception] = []
    reads = 0
    done = threading.Event()

    def ingest() -> None:
        for n in range(BATCHES):
            futures.append(store.write(batch(n)))
            time.sleep(0.001)

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                store.counts()
                reads += 1
            except StoreError as exc:
                read_errors.append(exc)

    try:
        workers = [threading.Thread(target=ingest), threading.Thread(target=read)]
        for worker in workers:
            worker.start()
        for _ in range(COMPACTIONS):
            store.compact()
        workers[0].join(JOIN_TIMEOUT_S)
        for future in futures:
            future.result(JOIN_TIMEOUT_S)
        done.set()
        workers[1].join(JOIN_TIMEOUT_S)
        assert len(futures) == BATCHES
        assert reads > 0
        assert read_errors == []
        assert store.counts().spans == BATCHES * SPANS_PER_BATCH
    finally:
        done.set()
        store.close()
    reopened = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        assert reopened.counts().spans == BATCHES * SPANS_PER_BATCH
    finally:
        reopened.close()


def test_a_copy_left_by_a_crash_is_discarded_and_the_store_is_whole(tmp_path: Path) -> None:
    """A half-written <db>.compact (the process died before the rename) is removed at open."""
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    store.write(batch(1)).result()
    store.close()
    leftover = tmp_path / "spans.duckdb.compact"
    leftover.write_bytes(b"half a database")
    store = DuckDBStore(path)
    try:
        assert not leftover.exists()
        assert store.counts().spans == SPANS_PER_BATCH
    finally:
        store.close()
