"""The DuckDB writer folds the summaries once it is idle, not only every 64 commits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.journey_script import T0, S, shoppers
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore, writer
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
        # Health's count of unfolded commits reaching 0 is the sign the origins show.
        while store.health().unfolded_commits:
            assert time.monotonic() < deadline, "the idle writer never folded"
            time.sleep(IDLE_FOLD_S / 8)
            if measuring:
                assert store.size_bytes() > 0
        traces, _ = store.step_traces(WINDOW)
        failed = [t for t in traces if t.failed]
        assert len(failed) == 60
        assert {t.error_origin for t in failed} == {"payments"}
    finally:
        store.close()


def test_health_counts_the_commits_no_fold_has_taken_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each commit counts until a fold takes it in; meanwhile the failed traces show
    no error origin, and after the fold they do."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)  # no fold but the one asked for
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        records = shoppers()
        for half in (records[: len(records) // 2], records[len(records) // 2 :]):
            store.write(SpanBatch.from_records(half)).result(timeout=60)
        assert store.health().unfolded_commits == 2
        traces, _ = store.step_traces(WINDOW)
        assert {t.error_origin for t in traces if t.failed} == {None}
        store.compact_rollups()
        assert store.health().unfolded_commits == 0
        traces, _ = store.step_traces(WINDOW)
        assert {t.error_origin for t in traces if t.failed} == {"payments"}
    finally:
        store.close()
