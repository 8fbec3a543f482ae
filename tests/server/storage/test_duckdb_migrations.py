"""Schema versions: older files are upgraded in place without losing a span, newer ones
are refused, and a step that fails or is killed leaves the file at its old version.

The old files are fixtures made by the releases that wrote them (see
``support.old_stores``), opened here with today's code.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import duckdb
import httpx
import pytest

from support.kept_apart import in_share
from support.old_stores import EPOCH_NS, SCHEMA_VERSIONS, fixture_spans, trace_id, unpack
from support.processes import sigkill_once_said, threadline_serve
from threadline.demo.processes import free_port
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode, StoreCounts, TraceQuery
from threadline.server.storage.base import StoreError
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.journey_links import PREVIOUS_COLUMNS
from threadline.server.storage.duckdb.migrations import (
    LATEST,
    STEPS,
    Step,
    open_schema,
    stored_version,
)

WAIT_S: Final = 30.0
# A loaded machine takes a while to start Python, import DuckDB and write the ballast.
STEP_START_WAIT_S: Final = 120.0
# Of the ballast the slow step writes (~10 MB), at least this much is in the file at the kill.
UNCOMMITTED_BYTES: Final = 5_000_000
EXPECTED_COUNTS: Final = StoreCounts(spans=120, traces=30, sessions=6)
SECOND_NS: Final = 1_000_000_000


def version_rows(db: Path) -> list[int]:
    with duckdb.connect(str(db)) as connection:
        if stored_version(connection) in (None, 1):
            return []
        rows = connection.execute("SELECT version FROM threadline_schema ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def raw_spans(db: Path) -> list[tuple[Any, ...]]:
    """Every stored row, every column, read with DuckDB alone (no Threadline code)."""
    with duckdb.connect(str(db)) as connection:
        return connection.execute("SELECT * FROM spans ORDER BY trace_id, span_id").fetchall()


def assert_holds_the_fixture_spans(store: DuckDBStore) -> None:
    assert store.counts() == EXPECTED_COUNTS
    expected = fixture_spans()
    for n in range(EXPECTED_COUNTS.traces):
        spans = [s for s in expected if s.trace_id == trace_id(n)]
        assert store.get_trace(trace_id(n)) == sorted(spans, key=lambda s: (s.start_ns, s.span_id))


def test_a_new_file_starts_at_the_latest_version(tmp_path: Path) -> None:
    """A new file records the newest version once; reopening it adds nothing."""
    db = tmp_path / "spans.duckdb"
    DuckDBStore(db).close()
    DuckDBStore(db).close()
    assert version_rows(db) == [LATEST]


def test_every_step_has_a_fixture_made_by_the_version_before_it() -> None:
    """A step cannot be added without a file of the schema it upgrades from."""
    missing = [
        f"v{step.version - 1}.duckdb.gz"
        for step in STEPS
        if not (SCHEMA_VERSIONS / f"v{step.version - 1}.duckdb.gz").exists()
    ]
    assert missing == []


@pytest.mark.parametrize("step", STEPS, ids=lambda step: f"to-v{step.version}")
def test_each_step_upgrades_a_file_of_the_version_before_it(step: Step, tmp_path: Path) -> None:
    """The step alone takes the previous version's file to its version, every row unchanged."""
    db = unpack(step.version - 1, tmp_path)
    before = raw_spans(db)
    with duckdb.connect(str(db)) as connection:
        assert stored_version(connection) == step.version - 1
        upto = [s for s in STEPS if s.version <= step.version]
        open_schema(connection, db, steps=upto)
        assert stored_version(connection) == step.version
    assert raw_spans(db) == before
    assert len(before) == EXPECTED_COUNTS.spans


def test_a_version_1_file_opens_with_every_span_and_trace_as_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file made before versions were recorded opens as the newest version; span counts
    and every trace read back identical to what was written, and the upgrade is logged."""
    db = unpack(1, tmp_path)
    with caplog.at_level(logging.INFO, logger="threadline.server.storage.duckdb.migrations"):
        store = DuckDBStore(db)
    try:
        assert_holds_the_fixture_spans(store)
    finally:
        store.close()
    assert version_rows(db) == list(range(1, LATEST + 1))
    assert "from schema version 1 to 2" in caplog.text
    with duckdb.connect(str(db)) as connection:
        indexes = connection.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
    names = {row[0] for row in indexes}
    assert "spans_trace_id" in names
    assert not {"spans_session_id", "spans_user_id"} & names


def span_indexes(db: Path) -> set[str]:
    with duckdb.connect(str(db)) as connection:
        rows = connection.execute(
            "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'spans'"
        ).fetchall()
    return {row[0] for row in rows}


def test_spans_are_indexed_by_trace_id_alone_and_journeys_are_still_found(
    tmp_path: Path,
) -> None:
    """Version 18: a new file and an upgraded one index spans by trace id only (every
    commit paid for the session and user indexes), and a session's or a user's traces
    are still found, from the summaries, as the fixture holds them."""
    new = tmp_path / "new.duckdb"
    DuckDBStore(new).close()
    old = unpack(17, tmp_path)
    assert "spans_session_id" in span_indexes(old), "the version 17 file has the index"
    store = DuckDBStore(old)
    try:
        expected = fixture_spans()
        for key, value in (("session_id", "session-1"), ("user_id", "user-1")):
            wanted = sorted({s.trace_id for s in expected if getattr(s, key) == value})
            found = store.journey_traces(**{key: value})
            assert wanted, f"the fixture has traces of {key} {value}"
            assert sorted(trace.trace_id for trace in found) == wanted
    finally:
        store.close()
    assert span_indexes(new) == span_indexes(old) == {"spans_trace_id"}


@pytest.mark.parametrize("version", [18, 19])
def test_upgrades_copy_the_spans_of_failed_traces_and_of_the_share(
    tmp_path: Path, version: int
) -> None:
    """Versions 19 and 20: the spans of every trace the fixture holds with an error span
    (none of its traces folded yet), and of every trace hashing into the share, are
    copied apart, whole, and those of no other trace."""
    db = unpack(version, tmp_path)
    store = DuckDBStore(db)
    try:
        expected = fixture_spans()
        failed = {s.trace_id for s in expected if s.status is StatusCode.ERROR}
        shared = in_share({s.trace_id for s in expected}) - failed
        assert failed, "the fixture has failed traces"
        assert shared, "the fixture has a trace in the share that did not fail"
        copied = store._fetch("SELECT trace_id, span_id FROM failed_trace_spans", [])
        assert sorted(copied) == sorted(
            (s.trace_id, s.span_id) for s in expected if s.trace_id in failed | shared
        )
    finally:
        store.close()


def _make_newer(tmp_path: Path) -> Path:
    db = tmp_path / "newer.duckdb"
    DuckDBStore(db).close()
    with duckdb.connect(str(db)) as connection:
        connection.execute("INSERT INTO threadline_schema VALUES (?, 0, '9.0.0')", [LATEST + 1])
    return db


def test_a_file_from_a_newer_release_is_refused_naming_both_versions(tmp_path: Path) -> None:
    """Opening a newer file fails with both versions and the release that wrote it, and
    leaves the file as it was."""
    db = _make_newer(tmp_path)
    with pytest.raises(StoreError) as refused:
        DuckDBStore(db)
    message = str(refused.value)
    assert f"schema version {LATEST + 1}" in message
    assert f"up to {LATEST}" in message
    assert "Threadline 9.0.0" in message
    assert version_rows(db) == [LATEST, LATEST + 1]


def test_a_file_with_an_emptied_version_table_is_refused(tmp_path: Path) -> None:
    """A version table with no rows is not guessed at: opening says the version is unknown."""
    db = tmp_path / "spans.duckdb"
    DuckDBStore(db).close()
    with duckdb.connect(str(db)) as connection:
        connection.execute("DELETE FROM threadline_schema")
    with pytest.raises(StoreError, match="schema version is unknown"):
        DuckDBStore(db)


def test_serve_on_a_newer_file_exits_with_the_message(tmp_path: Path) -> None:
    """`threadline serve` on a newer file exits 1 with one line naming both versions."""
    db = _make_newer(tmp_path)
    command = ["serve", "--db", str(db), "--port", str(free_port())]
    served = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", *command],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert served.returncode == 1, served.stderr
    assert f"schema version {LATEST + 1}" in served.stderr
    assert f"up to {LATEST}" in served.stderr
    assert "Traceback" not in served.stderr


def test_a_failing_step_is_undone_whole(tmp_path: Path) -> None:
    """A step that fails halfway leaves neither its changes nor its version behind."""
    db = tmp_path / "spans.duckdb"
    DuckDBStore(db).close()

    def half_done(connection: duckdb.DuckDBPyConnection) -> None:
        connection.execute("CREATE TABLE half (n INTEGER)")
        connection.execute("SELECT * FROM no_such_table")

    with duckdb.connect(str(db)) as connection:
        expected = rf"from schema version {LATEST} to {LATEST + 1} .* was undone"
        with pytest.raises(StoreError, match=expected):
            open_schema(connection, db, steps=[*STEPS, Step(LATEST + 1, half_done)])
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
        assert stored_version(connection) == LATEST
    assert "half" not in tables


def test_steps_out_of_order_are_refused(tmp_path: Path) -> None:
    """A step list with a gap is a programming error caught before any file is touched."""
    with (
        duckdb.connect(str(tmp_path / "x.duckdb")) as connection,
        pytest.raises(ValueError, match="versions 2, 3"),
    ):
        open_schema(connection, tmp_path / "x.duckdb", steps=[Step(3, lambda _: None)])


# Runs the real steps, with the step to ``kill_at`` made slow: it does its work, then
# writes ~10 MB more in the same transaction (so DuckDB writes blocks to the file
# before commit), says so, and waits to be killed.
_MIGRATE_SLOWLY: Final = """
import sys, time
from pathlib import Path
import duckdb
from threadline.server.storage.duckdb.migrations import STEPS, Step, open_schema

db, kill_at = Path(sys.argv[1]), int(sys.argv[2])

def slow(apply):
    def run(connection):
        apply(connection)
        connection.execute(
            "CREATE TABLE ballast AS SELECT range AS n, md5(range::VARCHAR) AS pad"
            " FROM range(1000000)"
        )
        print("migrating", flush=True)
        time.sleep(60)
    return run

steps = [Step(s.version, slow(s.apply)) if s.version == kill_at else s for s in STEPS]
if kill_at > STEPS[-1].version:
    steps.append(Step(kill_at, slow(lambda connection: None)))
# No progress bar: it would print to stdout ahead of the line the test waits for.
connection = duckdb.connect(str(db))
connection.execute("SET enable_progress_bar = false")
open_schema(connection, db, steps=steps)
"""


def _kill_mid_migration(db: Path, kill_at: int) -> int:
    """Run the steps up to ``kill_at`` in a process, SIGKILL it inside that step; returns
    the file's size at the kill."""
    sizes: list[int] = []

    def at_kill() -> bool:
        sizes.append(db.stat().st_size)
        return True

    said = sigkill_once_said(
        _MIGRATE_SLOWLY, str(db), str(kill_at), wait_s=STEP_START_WAIT_S, until=at_kill
    )
    assert said.strip() == "migrating", said
    return sizes[0]


def _tables(db: Path) -> Sequence[str]:
    with duckdb.connect(str(db)) as connection:
        return sorted(row[0] for row in connection.execute("SHOW TABLES").fetchall())


# The tables each version has.
_TABLES_AT: Final[dict[int, list[str]]] = {
    1: ["spans"],
    2: ["spans", "threadline_schema"],
    3: sorted(
        [
            "rollup_edges",
            "rollup_names",
            "rollup_operations",
            "rollup_services",
            "spans",
            "threadline_schema",
        ]
    ),
    4: sorted(
        [
            "rollup_edges",
            "rollup_names",
            "rollup_operations",
            "rollup_services",
            "spans",
            "threadline_schema",
            "trace_summaries",
        ]
    ),
}
_TABLES_AT[5] = sorted(
    [
        *_TABLES_AT[4],
        "rollup_entries",
        "rollup_hops",
        "rollup_orphan_spans",
        "rollup_orphans",
        "rollup_roots",
    ]
)
_TABLES_AT[6] = sorted([*_TABLES_AT[5], "rollup_sdk_stats"])
_TABLES_AT[7] = sorted(
    [
        *_TABLES_AT[6],
        "alert_states",
        "rollup_retries",
        "rollup_synthetic",
        "rollup_synthetic_edges",
    ]
)
_TABLES_AT[8] = sorted([*_TABLES_AT[7], "rollup_exemplars"])
_TABLES_AT[9] = sorted([*_TABLES_AT[8], "journey_steps", "journey_synthetic"])
_TABLES_AT[10] = sorted([*_TABLES_AT[9], "logs"])
_TABLES_AT[11] = sorted([*_TABLES_AT[10], "drill_results"])
_TABLES_AT[12] = sorted([*_TABLES_AT[11], "documents"])
_TABLES_AT[13] = _TABLES_AT[12]  # a column of journey_steps
_TABLES_AT[14] = sorted(
    [
        *_TABLES_AT[13],
        "journey_session_failures",
        "journey_session_touches",
        "journey_slo_minutes",
    ]
)
_TABLES_AT[15] = _TABLES_AT[14]  # columns of journey_steps
_TABLES_AT[16] = sorted([*_TABLES_AT[15], "rollup_message_spans"])
_TABLES_AT[17] = sorted([*_TABLES_AT[16], "journey_summaries"])
_TABLES_AT[18] = _TABLES_AT[17]  # two indexes dropped
_TABLES_AT[19] = sorted([*_TABLES_AT[18], "failed_trace_spans"])
_TABLES_AT[20] = _TABLES_AT[19]  # more rows of failed_trace_spans
_TABLES_AT[21] = _TABLES_AT[20]  # a column of trace_summaries
_TABLES_AT[22] = _TABLES_AT[21]  # columns of journey_steps
_TABLES_AT[23] = sorted([*_TABLES_AT[22], "slow_trace_spans"])
_TABLES_AT[24] = sorted([*_TABLES_AT[23], "resource_keys"])
_TABLES_AT[25] = sorted([*_TABLES_AT[24], "trace_request_paths"])


@pytest.mark.parametrize(
    "kill_at",
    [2, 3, 4, LATEST + 1],
    ids=["in-step-2", "in-step-3", "in-step-4", "after-the-last-step"],
)
def test_a_migration_killed_midway_leaves_the_file_at_a_whole_version(
    kill_at: int, tmp_path: Path
) -> None:
    """SIGKILL during a step leaves the file at the version before that step, with that
    version's tables only; opening it again finishes the upgrade with every span kept."""
    db = unpack(1, tmp_path)
    before = raw_spans(db)
    size_before = db.stat().st_size

    size_at_kill = _kill_mid_migration(db, kill_at)

    # The step's uncommitted rows had reached the file itself, not only memory.
    assert size_at_kill > size_before + UNCOMMITTED_BYTES

    with duckdb.connect(str(db)) as connection:
        assert stored_version(connection) == kill_at - 1
    assert _tables(db) == _TABLES_AT[kill_at - 1]  # neither the step's tables nor its ballast
    assert raw_spans(db) == before
    store = DuckDBStore(db)
    try:
        assert_holds_the_fixture_spans(store)
    finally:
        store.close()
    assert version_rows(db) == list(range(1, LATEST + 1))


def test_serve_upgrades_an_old_file_and_answers_from_it(tmp_path: Path) -> None:
    """`threadline serve` on a version-1 file logs the upgrade and serves every span."""
    db = unpack(1, tmp_path)
    with threadline_serve(tmp_path, db=db) as server:
        stats = httpx.get(f"{server.url}/api/stats", timeout=10).json()
        log = server.log.read_text()
    assert (stats["spans"], stats["traces"], stats["sessions"]) == (120, 30, 6)
    assert "from schema version 1 to 2" in log
    assert f"is at schema version {LATEST}" in log


def test_the_version_check_in_the_docs_runs(tmp_path: Path) -> None:
    """docs/operating.md's snippet prints an upgraded file's history and a v1 file's version."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "operating.md").read_text()
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", page, re.DOTALL)
        if "threadline_schema" in block
    ]
    (tmp_path / "old").mkdir()
    (tmp_path / "upgraded").mkdir()
    old = unpack(1, tmp_path / "old")
    upgraded = unpack(1, tmp_path / "upgraded")
    DuckDBStore(upgraded).close()
    printed = {}
    for name, db in (("old", old), ("upgraded", upgraded)):
        db.rename(db.parent / "threadline.duckdb")
        ran = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=db.parent,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        printed[name] = ran.stdout.strip()
    assert printed["old"] == "version 1 (made before versions were recorded)"
    assert printed["upgraded"].startswith("[(1, 'unknown'), (2, ")


def test_the_slo_step_counts_only_marked_spans_as_synthetic(tmp_path: Path) -> None:
    """Version 7 fills ``rollup_synthetic`` from the spans: the fixture's trace 0 carries
    a journey id but no ``journey.synthetic`` marker, so it is real traffic and nothing
    is counted apart."""
    db = unpack(6, tmp_path)
    DuckDBStore(db).close()
    with duckdb.connect(str(db)) as connection:
        rows = connection.execute("SELECT service, sum(spans) FROM rollup_synthetic GROUP BY ALL")
        assert rows.fetchall() == []


def test_the_rollup_step_counts_the_spans_a_version_2_file_holds(tmp_path: Path) -> None:
    """Version 3 fills the rollups from the stored spans: the fleet views read them and
    count what a scan of the spans counts."""
    db = unpack(2, tmp_path)
    store = DuckDBStore(db)
    try:
        window = TimeWindow(EPOCH_NS - 60 * SECOND_NS, EPOCH_NS + 3600 * SECOND_NS)
        from_rollups = store.operation_red(window)
        assert from_rollups, "the upgrade counted the fixture's entry spans"
        scanned = store.scan.operation_red(window)
        assert [
            (r.service, r.operation, r.stats.requests, r.stats.errors) for r in from_rollups
        ] == [(r.service, r.operation, r.stats.requests, r.stats.errors) for r in scanned]
        assert sum(r.stats.requests for r in from_rollups) == EXPECTED_COUNTS.traces
    finally:
        store.close()
    assert version_rows(db) == list(range(2, LATEST + 1))  # made new at version 2, then upgraded


def test_the_summary_step_summarises_the_traces_a_version_3_file_holds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 4 fills the trace summaries from the stored spans, logging its progress:
    search and journey lists read them and answer as a scan of the spans does."""
    db = unpack(3, tmp_path)
    with caplog.at_level(logging.INFO, logger="threadline.server.storage.duckdb.backfill"):
        store = DuckDBStore(db)
    try:
        assert "summarising stored traces: 1 of" in caplog.text
        for order in ("recent", "slowest"):
            query = TraceQuery(limit=100, order=order)
            found = store.search_traces(query)
            assert len(found) == EXPECTED_COUNTS.traces
            assert found == store.scan.search_traces(query)
        failed = TraceQuery(status=StatusCode.ERROR, limit=100)
        assert store.search_traces(failed) == store.scan.search_traces(failed)
        assert store.search_traces(failed), "the fixture has failed traces"
        for journeys in ({"order": "recent"}, {"order": "slowest", "failed": True}):
            assert store.list_journeys(limit=50, **journeys) == store.scan.list_journeys(
                limit=50, **journeys
            )
    finally:
        store.close()
    assert version_rows(db)[:2] == [3, 4]  # made new at version 3, then upgraded


@pytest.mark.parametrize("version", [3, 4])
def test_the_hotspot_step_counts_the_spans_an_older_file_holds(
    version: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 5 fills the hotspot and propagation rollups from the stored spans, with
    progress logged: failed and whole-trace counts and propagation answer as a scan does."""
    db = unpack(version, tmp_path)
    caplog.set_level(logging.INFO, logger="threadline.server.storage.duckdb")
    store = DuckDBStore(db)
    try:
        window = TimeWindow(EPOCH_NS - 60 * SECOND_NS, EPOCH_NS + 3600 * SECOND_NS)
        for target in (Target(), Target("gateway"), Target("inventory")):
            rolled = store.trace_groups(target, Split.FAILED, window)
            scanned = store.scan.trace_groups(target, Split.FAILED, window)
            assert (rolled.focus_traces, rolled.baseline_traces) == (
                scanned.focus_traces,
                scanned.baseline_traces,
            )
        whole = store.trace_groups(Target(), Split.FAILED, window)
        assert whole.focus_traces + whole.baseline_traces == EXPECTED_COUNTS.traces
        assert store.propagation(window) == store.scan.propagation(window)
    finally:
        store.close()
    assert version_rows(db)[-1] == LATEST
    assert "building hotspot and propagation rollups from stored spans" in caplog.text


def test_the_journey_attribute_step_fills_the_steps_of_a_version_11_file(
    tmp_path: Path,
) -> None:
    """Version 13 gives each step its entry span's attributes, read from the spans of
    the version 11 file: the root's values match, a child span's never do."""
    db = unpack(11, tmp_path)
    window = TimeWindow(EPOCH_NS, EPOCH_NS + 3600 * 1_000_000_000)
    store = DuckDBStore(db)
    try:
        everyone, _ = store.journey_map(window)
        rooted, _ = store.journey_map(window, attribute=("http.route", "/gateway"))
        assert rooted == everyone
        assert sum(s.traces for s in rooted) == 30
        # Trace n has ``retry`` n % 3 and session n % 6: retry 1 is sessions 1 and 4.
        traces, _ = store.step_traces(window, attribute=("retry", "1"))
        assert {t.session_id for t in traces} == {"session-1", "session-4"}
        assert len(traces) == 10
        assert store.journey_map(window, attribute=("http.route", "/payments")) == ([], [])
        # The file's summaries were never folded: the next fold finds the error origins.
        store.compact_rollups()
        failed, _ = store.step_traces(window)
        assert {t.error_origin for t in failed if t.failed} == {"inventory"}
    finally:
        store.close()


def _folded_fixture_store(tmp_path: Path) -> Path:
    """A store at the latest version holding ``fixture_spans()``, its summaries folded."""
    db = tmp_path / "spans.duckdb"
    store = DuckDBStore(db)
    try:
        store.write(SpanBatch.from_records(fixture_spans())).result(timeout=30)
        store.compact_rollups()
    finally:
        store.close()
    return db


def test_the_duration_step_gives_every_folded_summary_its_duration(tmp_path: Path) -> None:
    """Version 21 keeps each folded summary row's duration: on a file whose folded rows
    have none (as at version 20), searches by duration, in both directions and between
    bounds, answer from it as a scan of the spans does."""
    db = _folded_fixture_store(tmp_path)
    with duckdb.connect(str(db)) as connection:
        connection.execute("ALTER TABLE trace_summaries DROP COLUMN duration_ns")
        connection.execute("UPDATE threadline_schema SET version = 20 WHERE version = ?", [LATEST])
    store = DuckDBStore(db)
    try:
        rows = store._fetch(
            "SELECT count(*), count(*) FILTER (WHERE duration_ns = end_ns - start_ns)"
            " FROM trace_summaries WHERE NOT fresh",
            [],
        )
        assert rows[0][0] == EXPECTED_COUNTS.traces
        assert rows[0][1] == rows[0][0]
        durations = sorted(t.duration_ns for t in store.scan.search_traces(TraceQuery(limit=100)))
        middle = durations[len(durations) // 2]
        for query in (
            TraceQuery(limit=100, order="slowest"),
            TraceQuery(limit=7, order="fastest", offset=3),
            TraceQuery(limit=100, min_duration_ns=middle),
            TraceQuery(limit=100, max_duration_ns=middle, order="slowest"),
        ):
            found = store.search_traces(query)
            assert found
            assert found == store.scan.search_traces(query), query
    finally:
        store.close()
    assert version_rows(db)[-(LATEST - 19) :] == list(range(20, LATEST + 1))


def test_the_previous_steps_step_counts_each_journey_once_on_an_older_file(
    tmp_path: Path,
) -> None:
    """Version 22 keeps where each journey step's same step and same move came before:
    on a file whose steps have neither (as at version 21), a journey map counts the
    journeys taking each step and making each move as distinct sessions, in an hour
    and in a window that starts after some of each session's steps."""
    db = _folded_fixture_store(tmp_path)
    with duckdb.connect(str(db)) as connection:
        for column in PREVIOUS_COLUMNS:
            connection.execute(f"UPDATE journey_steps SET {column} = NULL")
        connection.execute("UPDATE threadline_schema SET version = 21 WHERE version = ?", [LATEST])
    store = DuckDBStore(db)
    try:
        for window in (
            TimeWindow(EPOCH_NS, EPOCH_NS + 3600 * 10**9),
            TimeWindow(EPOCH_NS + 10 * 10**9, EPOCH_NS + 3600 * 10**9),
        ):
            steps, moves = store.journey_map(window)
            traces, _ = store.step_traces(window)
            inside = [t for t in traces if t.start_ns >= window.start_ns]
            assert steps
            assert moves
            assert {s.step: s.journeys for s in steps} == {
                step: len({t.session_id for t in inside if t.step == step})
                for step in {t.step for t in inside}
            }
            for move in moves:
                assert move.journeys == len(
                    {
                        a.session_id
                        for a, b in pairwise(traces)
                        if a.start_ns >= window.start_ns
                        and a.session_id == b.session_id
                        and (a.step, b.step) == (move.source, move.target)
                    }
                )
    finally:
        store.close()
    assert version_rows(db)[-(LATEST - 20) :] == list(range(21, LATEST + 1))
