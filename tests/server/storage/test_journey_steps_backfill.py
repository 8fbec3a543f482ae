"""Schema version 9's step fills the journey steps from the summaries already stored;
version 13's fills their entry span attributes from the spans; version 15's links each
step to the next."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from support.journey_script import T0, S, shoppers
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.journey_model import StepStats, Transition
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.journey_links import LINK_COLUMNS
from threadline.server.storage.duckdb.migrations import LATEST

WINDOW = TimeWindow(T0, T0 + 3600 * S)
VERSION_14_TABLES = ("journey_session_touches", "journey_session_failures", "journey_slo_minutes")


def _shoppers_map(db: Path) -> tuple[list[StepStats], list[Transition]]:
    """The map of the scripted shoppers written to a new file at ``db``, folded."""
    store = DuckDBStore(db)
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        store.compact_rollups()
        return store.journey_map(WINDOW)
    finally:
        store.close()


def test_upgrading_to_version_9_gives_the_same_map(tmp_path: Path) -> None:
    """A file whose journey tables are missing (as at version 8) gets them filled, the
    synthetic marks included, and maps as a file that kept them from the start."""
    db = tmp_path / "spans.duckdb"
    kept = _shoppers_map(db)
    connection = duckdb.connect(str(db))
    try:
        connection.execute("DROP TABLE journey_steps")
        connection.execute("DROP TABLE journey_synthetic")
        connection.execute("DROP TABLE logs")  # version 10's, made again by its step
        connection.execute("DROP TABLE drill_results")  # version 11's, made again by its step
        connection.execute("DROP TABLE documents")  # version 12's, made again by its step
        for table in VERSION_14_TABLES:  # made again by version 14's step
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DROP TABLE rollup_message_spans")  # version 16's, made again
        connection.execute("DROP TABLE journey_summaries")  # version 17's, made again
        connection.execute("UPDATE threadline_schema SET version = 8 WHERE version = ?", [LATEST])
    finally:
        connection.close()
    store = DuckDBStore(db)
    try:
        assert store.journey_map(WINDOW) == kept
        assert sum(t.count for t in kept[1]) == 190 + 190 + 125
    finally:
        store.close()


def test_upgrading_to_version_13_fills_the_step_attributes(tmp_path: Path) -> None:
    """A file whose steps have no attributes or error origins (as at version 12) gets
    them from the root spans and the folded summaries: the map of trial shoppers and
    the funnel's traces are the ones a file kept from the start."""
    db = tmp_path / "spans.duckdb"
    trial = ("app.plan", "trial")
    store = DuckDBStore(db)
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        store.compact_rollups()
        kept = store.journey_map(WINDOW, attribute=trial)
        traces, _ = store.step_traces(WINDOW)
    finally:
        store.close()
    connection = duckdb.connect(str(db))
    try:
        # Version 14's tables and index, made again by its step (an index blocks ALTER).
        for table in VERSION_14_TABLES:
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DROP INDEX journey_steps_session_id")
        connection.execute("ALTER TABLE journey_steps DROP COLUMN attributes")
        connection.execute("ALTER TABLE journey_steps DROP COLUMN error_origin")
        for column in LINK_COLUMNS:  # versions 15 and 22 make them again
            connection.execute(f"ALTER TABLE journey_steps DROP COLUMN {column}")
        connection.execute("DROP TABLE rollup_message_spans")  # version 16's, made again
        connection.execute("DROP TABLE journey_summaries")  # version 17's, made again
        connection.execute("UPDATE threadline_schema SET version = 12 WHERE version = ?", [LATEST])
    finally:
        connection.close()
    store = DuckDBStore(db)
    try:
        assert store.journey_map(WINDOW, attribute=trial) == kept
        assert store.step_traces(WINDOW) == (traces, False)
        assert {t.error_origin for t in traces if t.failed} == {"payments"}
        # Trial shoppers are sessions 70-99: 20 stop at checkout, 10 pay.
        assert {s.step.operation: s.journeys for s in kept[0]} == {
            "GET /product": 30,
            "POST /cart": 30,
            "POST /checkout": 30,
            "POST /pay": 10,
        }
    finally:
        store.close()


def test_upgrading_to_version_15_links_every_step_to_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose steps have no links (as at version 14) gets them from its steps,
    with progress logged: the map (read from the links) is the one of a file that kept
    them from the start."""
    db = tmp_path / "spans.duckdb"
    kept = _shoppers_map(db)
    with duckdb.connect(str(db)) as connection:
        connection.execute("DROP INDEX journey_steps_session_id")  # an index blocks ALTER
        for column in LINK_COLUMNS:  # versions 15 and 22 make them again
            connection.execute(f"ALTER TABLE journey_steps DROP COLUMN {column}")
        connection.execute("CREATE INDEX journey_steps_session_id ON journey_steps (session_id)")
        connection.execute("DROP TABLE rollup_message_spans")  # version 16's, made again
        connection.execute("DROP TABLE journey_summaries")  # version 17's, made again
        connection.execute("UPDATE threadline_schema SET version = 14 WHERE version = ?", [LATEST])
    caplog.set_level(logging.INFO, logger="threadline.server.storage.duckdb")
    store = DuckDBStore(db)
    try:
        assert "linking each journey step to the next: 20 of 20" in caplog.text
        assert store.journey_map(WINDOW) == kept
        assert sum(t.count for t in kept[1]) == 190 + 190 + 125
    finally:
        store.close()
