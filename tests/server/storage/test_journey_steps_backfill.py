"""Schema version 9's step fills the journey steps from the summaries already stored."""

from __future__ import annotations

from pathlib import Path

import duckdb

from support.journey_script import T0, S, shoppers
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.migrations import LATEST

WINDOW = TimeWindow(T0, T0 + 3600 * S)


def test_upgrading_to_version_9_gives_the_same_map(tmp_path: Path) -> None:
    """A file whose journey tables are missing (as at version 8) gets them filled, the
    synthetic marks included, and maps as a file that kept them from the start."""
    db = tmp_path / "spans.duckdb"
    store = DuckDBStore(db)
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        store.compact_rollups()
        kept = store.journey_map(WINDOW)
    finally:
        store.close()
    connection = duckdb.connect(str(db))
    try:
        connection.execute("DROP TABLE journey_steps")
        connection.execute("DROP TABLE journey_synthetic")
        connection.execute("DROP TABLE logs")  # version 10's, made again by its step
        connection.execute("DROP TABLE drill_results")  # version 11's, made again by its step
        connection.execute("DROP TABLE documents")  # version 12's, made again by its step
        connection.execute("UPDATE threadline_schema SET version = 8 WHERE version = ?", [LATEST])
    finally:
        connection.close()
    store = DuckDBStore(db)
    try:
        assert store.journey_map(WINDOW) == kept
        assert sum(t.count for t in kept[1]) == 190 + 190 + 125
    finally:
        store.close()
