"""Journey SLO counts from ``journey_slo_minutes`` (schema version 14) against the scan
of the journey steps they replace, on the DuckDB store.

Both reads run on the same store after every change: traces written in parts (a late
root moves a trace to an earlier minute, another step or another session), folded or
not, deleted by tail sampling, erased with their user, cut by retention.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Final

import duckdb
import pytest

from support.journey_workload import MINUTE, OPERATIONS, T0, S, drive, journey_trace
from support.old_stores import EPOCH_NS, unpack
from support.spans import span_record
from threadline.server.analysis.burn import Counts
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.duckdb import DuckDBStore, journey_sessions, slo_reads
from threadline.server.storage.duckdb.journey_links import LINK_COLUMNS
from threadline.server.storage.duckdb.migrations import LATEST
from threadline.slos import Indicator

END: Final = T0 + 120 * MINUTE
WINDOWS: Final = (MINUTE, 5 * MINUTE, 17 * MINUTE, 60 * MINUTE, 120 * MINUTE)
VERSION_14_TABLES: Final = (
    "journey_session_touches",
    "journey_session_failures",
    "journey_slo_minutes",
)
QUERIES: Final = (
    IndicatorQuery(Indicator.JOURNEY, "shop"),
    IndicatorQuery(Indicator.JOURNEY, "pay"),
    *(IndicatorQuery(Indicator.JOURNEY, "shop", operation) for operation in OPERATIONS),
    IndicatorQuery(Indicator.JOURNEY, "pay", "POST /charge"),
)


def _assert_same(store: DuckDBStore) -> None:
    """The minutes (with unfolded traces merged) answer as the scan does, for every
    query and window; the minutes are read, not the scan."""
    end, firsts = slo_reads._firsts(END, WINDOWS)
    for query in QUERIES:
        kept = journey_sessions.counts(store._fetch, query, end, firsts)
        scanned = slo_reads._scanned_counts(store._fetch, query, end, firsts)
        assert kept is not None, query
        assert kept == scanned, query
        assert store.slo_counts(query, END, WINDOWS) == scanned


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_minutes_answer_as_the_scan_through_folds_deletions_and_retention(
    tmp_path: Path, seed: int
) -> None:
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        drive(store, random.Random(seed), _assert_same)
        totals = [c.total for c in store.slo_counts(QUERIES[0], END, WINDOWS)]
        assert 0 < totals[2] < totals[-1]  # the workload reached the short and long windows
    finally:
        store.close()


def _visit(trace: str, operation: str, start_ns: int, **fields: object) -> SpanBatch:
    """One trace of session s1: a root span at shop."""
    return SpanBatch.from_records(
        [span_record(trace * 32, "r", None, "shop", operation, start_ns, start_ns + S,
                     session_id="s1", **fields)]
    )  # fmt: skip


def test_unfolded_traces_count_as_folded_ones(tmp_path: Path) -> None:
    """A session folded as good, then a later unfolded trace of it that failed at
    another step: the minutes count it bad in the windows holding that trace."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    checkout = IndicatorQuery(Indicator.JOURNEY, "shop", "POST /checkout")
    shop = IndicatorQuery(Indicator.JOURNEY, "shop")
    try:
        store.write(_visit("a", "POST /checkout", END - 30 * MINUTE)).result(timeout=30)
        store.compact_rollups()
        error = StatusCode.ERROR
        store.write(_visit("b", "GET /home", END - 2 * MINUTE, status=error)).result(timeout=30)
        windows = (5 * MINUTE, 60 * MINUTE)
        end, firsts = slo_reads._firsts(END, windows)
        assert journey_sessions.counts(store._fetch, shop, end, firsts) == [
            Counts(good=0, total=1),
            Counts(good=0, total=1),
        ]
        # Checkouts: the session took the step 30 minutes ago and failed since.
        assert journey_sessions.counts(store._fetch, checkout, end, firsts) == [
            Counts(good=0, total=0),
            Counts(good=0, total=1),
        ]
        store.compact_rollups()
        assert store.slo_counts(checkout, END, windows) == [
            Counts(good=0, total=0),
            Counts(good=0, total=1),
        ]
    finally:
        store.close()


def test_steps_dated_after_the_end_are_read_from_the_steps(tmp_path: Path) -> None:
    """A session whose latest (folded) trace is after the read's end: its latest minute
    says nothing of the windows, so the read falls back to the scan, which is exact."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    shop = IndicatorQuery(Indicator.JOURNEY, "shop")
    try:
        store.write(_visit("a", "GET /home", END - 3 * MINUTE)).result(timeout=30)
        after = END + 10 * MINUTE
        store.write(_visit("b", "GET /home", after, status=StatusCode.ERROR)).result(timeout=30)
        store.compact_rollups()
        end, firsts = slo_reads._firsts(END, (5 * MINUTE,))
        assert journey_sessions.counts(store._fetch, shop, end, firsts) is None
        assert store.slo_counts(shop, END, (5 * MINUTE,)) == [Counts(good=1, total=1)]
        # Read at a later end, the same store answers from the minutes.
        later = END + 20 * MINUTE
        end, firsts = slo_reads._firsts(later, (15 * MINUTE, 30 * MINUTE))
        assert journey_sessions.counts(store._fetch, shop, end, firsts) == [
            Counts(good=0, total=1),
            Counts(good=0, total=1),
        ]
    finally:
        store.close()


def test_the_version_14_step_fills_the_minutes_from_the_steps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file with journey steps but no minutes (as at version 13) gets them built from
    its steps, with progress logged: they answer as the file that kept them did."""
    db = tmp_path / "spans.duckdb"
    rng = random.Random(5)
    store = DuckDBStore(db)
    try:
        spans = [span for n in range(120) for part in journey_trace(rng, n) for span in part]
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        store.compact_rollups()
        kept = [store.slo_counts(query, END, WINDOWS) for query in QUERIES]
    finally:
        store.close()
    with duckdb.connect(str(db)) as connection:
        for table in VERSION_14_TABLES:
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DROP INDEX journey_steps_session_id")
        for column in LINK_COLUMNS:  # versions 15 and 22 make them again
            connection.execute(f"ALTER TABLE journey_steps DROP COLUMN {column}")
        connection.execute("DROP TABLE rollup_message_spans")  # version 16's, made again
        connection.execute("DROP TABLE journey_summaries")  # version 17's, made again
        connection.execute("UPDATE threadline_schema SET version = 13 WHERE version = ?", [LATEST])
    caplog.set_level(logging.INFO, logger="threadline.server.storage.duckdb")
    store = DuckDBStore(db)
    try:
        assert "building journey SLO minutes from journey steps: 20 of 20" in caplog.text
        _assert_same(store)
        assert [store.slo_counts(query, END, WINDOWS) for query in QUERIES] == kept
        assert kept[0][-1].total > 0
    finally:
        store.close()


def test_a_version_13_file_upgrades_and_counts_its_journeys(tmp_path: Path) -> None:
    """The version 13 fixture (its traces not folded yet) upgrades; once folded, its six
    sessions count from the minutes as from the scan."""
    store = DuckDBStore(unpack(13, tmp_path))
    try:
        store.compact_rollups()
        end, firsts = slo_reads._firsts(EPOCH_NS + 10 * MINUTE, (MINUTE, 60 * MINUTE))
        for service in ("gateway", "inventory"):
            query = IndicatorQuery(Indicator.JOURNEY, service)
            kept = journey_sessions.counts(store._fetch, query, end, firsts)
            assert kept == slo_reads._scanned_counts(store._fetch, query, end, firsts)
            assert kept is not None
            assert kept[1].total == 6
    finally:
        store.close()


def test_a_fold_between_the_reads_statements_changes_no_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept minutes and the unfolded sessions are read in two statements; a fold
    committing between them (the writer folds whenever it likes) moves sessions from
    the second to the first. The read sees one snapshot, so it counts each once."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    shop = IndicatorQuery(Indicator.JOURNEY, "shop")
    windows = (5 * MINUTE, 60 * MINUTE)
    try:
        store.write(_visit("a", "GET /home", END - 30 * MINUTE)).result(timeout=30)
        store.compact_rollups()
        error = StatusCode.ERROR
        store.write(_visit("b", "GET /cart", END - 2 * MINUTE, status=error)).result(timeout=30)
        expected = [Counts(good=0, total=1), Counts(good=0, total=1)]
        assert store.slo_counts(shop, END, windows) == expected
        unfolded_sessions = journey_sessions.unfolded_sessions

        def fold_first(*args: object) -> list[tuple[object, ...]]:
            store.fold_pending()  # commits on the writer while the read is under way
            return unfolded_sessions(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(journey_sessions, "unfolded_sessions", fold_first)
        assert store.slo_counts(shop, END, windows) == expected
        monkeypatch.undo()
        assert store.slo_counts(shop, END, windows) == expected  # folded: from the minutes
    finally:
        store.close()
