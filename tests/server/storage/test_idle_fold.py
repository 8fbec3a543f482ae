"""The DuckDB writer folds the summaries once it is idle, not only every 64 commits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.journey_script import T0, S, shoppers
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.writer import IDLE_FOLD_S

WINDOW = TimeWindow(T0, T0 + 3600 * S)


@pytest.mark.parametrize("measuring", [False, True], ids=["quiet", "size measured meanwhile"])
def test_an_idle_writer_folds_and_the_error_origins_show(tmp_path: Path, measuring: bool) -> None:
    """One write, then nothing: within a few idle periods every trace is folded and
    the failed checkouts' steps name payments, where their error started. Measuring
    the store's size (retention, health checks) runs on the writer too, but is no
    write: polling it often does not put the fold off."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        traces, _ = store.step_traces(WINDOW)
        failed = [t for t in traces if t.failed]
        assert len(failed) == 60
        deadline = time.monotonic() + 20 * IDLE_FOLD_S
        while {t.error_origin for t in failed} != {"payments"}:
            assert time.monotonic() < deadline, "the idle writer never folded"
            time.sleep(IDLE_FOLD_S / 8)
            if measuring:
                assert store.size_bytes() > 0
            traces, _ = store.step_traces(WINDOW)
            failed = [t for t in traces if t.failed]
        assert len(failed) == 60
    finally:
        store.close()
