"""DuckDB-specific guarantees: the file layout, durability across restarts and kills,
group commit, and one bad batch not failing its neighbours."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pytest

from support.processes import sigkill_once_said
from threadline.server.batch import COLUMNS, SPAN_SCHEMA, SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StoreCounts
from threadline.server.storage.base import Store, StoreError
from threadline.server.storage.duckdb import DuckDBStore, writer

WriterHold = Callable[[Store], AbstractContextManager[None]]

WAIT_S: Final = 30.0


def trace(trace_id: str, spans: int, *, service: str = "web") -> list[SpanRecord]:
    return [
        SpanRecord(
            trace_id=trace_id,
            span_id=f"{n:016x}",
            parent_span_id=None if n == 0 else f"{0:016x}",
            service_name=service,
            name=f"op{n}",
            kind=SpanKind.SERVER,
            start_ns=1_000 + n,
            end_ns=2_000 + n,
            session_id="s1",
            attributes={"n": n},
        )
        for n in range(spans)
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "spans.duckdb"


def test_span_table_mirrors_the_batch_schema(db_path: Path) -> None:
    """The file holds one spans table whose columns are the batch columns, in order (and
    its copies of failed and of slow traces' spans, alike), the table recording its
    schema version, the trace and journey summaries, journey steps and the journey SLO
    state, logs, the drills' results, the alerts' state, the keys the spans' resources
    carry and the request paths kept for a share of the copies (besides the rollups)."""
    DuckDBStore(db_path).close()

    with duckdb.connect(str(db_path)) as connection:
        described = connection.execute("DESCRIBE spans").fetchall()
        copies = [
            connection.execute(f"DESCRIBE {table}").fetchall()
            for table in ("failed_trace_spans", "slow_trace_spans")
        ]
        tables = connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name NOT LIKE 'rollup_%'"
            " ORDER BY table_name"
        ).fetchall()

    assert tables == [
        ("alert_states",),
        ("documents",),
        ("drill_results",),
        ("failed_trace_spans",),
        ("journey_session_failures",),
        ("journey_session_touches",),
        ("journey_slo_minutes",),
        ("journey_steps",),
        ("journey_summaries",),
        ("journey_synthetic",),
        ("logs",),
        ("resource_keys",),
        ("slow_trace_spans",),
        ("spans",),
        ("threadline_schema",),
        ("trace_request_paths",),
        ("trace_summaries",),
    ]
    assert [(row[0], row[1]) for row in described] == [
        (name, "BIGINT" if name.endswith("_ns") else "VARCHAR") for name in COLUMNS
    ]
    assert [row[2] == "YES" for row in described] == [field.nullable for field in SPAN_SCHEMA]
    assert copies == [described, described]


def test_reopening_keeps_spans(db_path: Path) -> None:
    """Spans written before close are there after reopening the file, and nothing is doubled."""
    records = trace("a" * 32, 3)
    store = DuckDBStore(db_path)
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)
    store.close()

    reopened = DuckDBStore(db_path)
    try:
        assert reopened.get_trace("a" * 32) == records
        assert reopened.counts() == StoreCounts(spans=3, traces=1, sessions=1)
    finally:
        reopened.close()


_WRITE_THEN_EXIT = """
import os, sys
from pathlib import Path
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

note = "x" * 4096  # about 4 KB of attribute text per span: the log grows fast
store = DuckDBStore(Path(sys.argv[1]))
for t in range(12):
    spans = [
        SpanRecord(f"{t:032x}", f"{n:016x}", None, "web", "op", SpanKind.SERVER, n, n + 1,
                   attributes={"note": note})
        for n in range(500)
    ]
    store.write(SpanBatch.from_records(spans)).result(timeout=30)
os._exit(0)  # as a crash leaves the file: closing would checkpoint
"""


def test_commits_gather_in_the_log_between_checkpoints(db_path: Path) -> None:
    """Committed spans wait in the write-ahead log well past DuckDB's default 16 MB
    before a checkpoint (which would otherwise stall the writer every few commits);
    opening the file after a crash replays the log and finds every span."""
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_THEN_EXIT, str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    wal = db_path.with_name(db_path.name + ".wal")
    assert wal.stat().st_size > 20 * 2**20, "a checkpoint emptied the log"
    store = DuckDBStore(db_path)
    try:
        assert store.counts().spans == 12 * 500
    finally:
        store.close()


def test_a_fold_checkpoints(db_path: Path) -> None:
    """Folding rewrites and updates rows, whose versions every scan reconciles until a
    checkpoint: the fold checkpoints, so the log is empty after it."""
    store = DuckDBStore(db_path)
    try:
        store.write(SpanBatch.from_records(trace("c" * 32, 20))).result(timeout=WAIT_S)
        wal = db_path.with_name(db_path.name + ".wal")
        assert wal.stat().st_size > 0
        store.fold_pending()
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        store.close()


def test_folding_on_request_checkpoints_like_the_writers_own_folds(db_path: Path) -> None:
    """``compact_rollups`` leaves the store as the writer's folds do: checkpointed, so the
    spans appended since the last checkpoint are stored compressed, not kept in memory
    as they were appended (which scans read more slowly)."""
    stored_as = (
        "SELECT DISTINCT compression FROM pragma_storage_info('spans') WHERE column_name = ?"
    )
    store = DuckDBStore(db_path)
    try:
        store.write(SpanBatch.from_records(trace("d" * 32, 5000))).result(timeout=WAIT_S)
        assert ("Uncompressed",) in store._fetch(stored_as, ["span_id"])
        store.compact_rollups()
        assert store._fetch(stored_as, ["span_id"]), "the table reports its segments"
        assert ("Uncompressed",) not in store._fetch(stored_as, ["span_id"])
        wal = db_path.with_name(db_path.name + ".wal")
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        store.close()


_WRITE_THEN_WAIT = """
import sys, time
from pathlib import Path
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

def spans(trace_id, count):
    return [
        SpanRecord(trace_id, f"{n:016x}", None, "web", f"op{n}", SpanKind.SERVER, n, n + 1)
        for n in range(count)
    ]

store = DuckDBStore(Path(sys.argv[1]))
futures = [store.write(SpanBatch.from_records(spans(f"{t:032x}", 50))) for t in range(20)]
for future in futures:
    future.result(timeout=30)
print("acked", flush=True)
# Keep writes in flight (never acknowledged) so the kill lands mid-work.
for t in range(100, 100_000):
    try:
        store.write(SpanBatch.from_records(spans(f"{t:032x}", 50)))
    except Exception:
        time.sleep(0.001)
time.sleep(60)
"""


def test_acknowledged_spans_survive_kill_9(db_path: Path) -> None:
    """Spans whose write was acknowledged are in the file after the process is SIGKILLed."""
    said = sigkill_once_said(_WRITE_THEN_WAIT, str(db_path), wait_s=WAIT_S)
    assert said.strip() == "acked"
    store = DuckDBStore(db_path)
    try:
        for t in range(20):
            assert len(store.get_trace(f"{t:032x}")) == 50
    finally:
        store.close()


_BACKLOG_THEN_WAIT = """
import sys, time
from pathlib import Path
import pyarrow as pa
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

template = SpanBatch.from_records(
    [SpanRecord("0" * 32, "0" * 16, None, "web", "op", SpanKind.SERVER, 1, 2)]
).table

def batch(first):
    rows = template.take([0] * 10_000)
    ids = pa.array([f"{first + n:032x}" for n in range(10_000)], pa.string())
    return SpanBatch(rows.set_column(0, "trace_id", ids))

batches = [batch(n * 10_000) for n in range(52)]
store = DuckDBStore(Path(sys.argv[1]))
for future in [store.write(b) for b in batches[:26]]:
    future.result(timeout=60)
# Two more groups of full row groups waiting at once, never acknowledged: the kill
# lands while the writer commits them.
for b in batches[26:]:
    store.write(b)
print("acked and queued", flush=True)
time.sleep(60)
"""


def test_acknowledged_spans_survive_kill_9_amid_full_row_groups(db_path: Path) -> None:
    """A commit of a full row group writes it into the file before it commits: killed
    while such commits run, the file opens with every acknowledged span, and with no
    span of a commit that did not finish. The kill waits until the file grows past its
    size at the acknowledgement: the next group's row group is being written into it."""
    sizes: list[int] = []  # the first, at the acknowledgement

    def writing_a_row_group() -> bool:
        sizes.append(db_path.stat().st_size)
        return sizes[-1] > sizes[0]

    said = sigkill_once_said(
        _BACKLOG_THEN_WAIT, str(db_path), wait_s=4 * WAIT_S, until=writing_a_row_group
    )
    assert said.strip() == "acked and queued"
    store = DuckDBStore(db_path)
    try:
        assert store.get_trace(f"{0:032x}"), "the first acknowledged span"
        assert store.get_trace(f"{259_999:032x}"), "the last acknowledged span"
        stored = store.counts().spans
        # Whole groups only (13 batches of 10,000 a commit): all of a commit or none.
        assert stored in (260_000, 390_000, 520_000)
    finally:
        store.close()


def test_concurrent_writes_share_commits(db_path: Path, hold_writer: WriterHold) -> None:
    """Writes that arrive while a commit runs are committed together, not one by one."""
    store = DuckDBStore(db_path)
    try:
        futures: list[Future[None]] = []
        lock = threading.Lock()

        def send(thread_index: int) -> None:
            for write_index in range(10):
                batch = SpanBatch.from_records(trace(f"{thread_index:016x}{write_index:016x}", 2))
                future = store.write(batch)
                with lock:
                    futures.append(future)

        with hold_writer(store):
            commits_before = store.commits
            threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=WAIT_S)
        for future in futures:
            future.result(timeout=WAIT_S)

        assert len(futures) == 200
        assert store.commits - commits_before == 1
    finally:
        store.close()


def _distinct_spans(template: pa.Table, first: int, count: int) -> SpanBatch:
    """``count`` copies of ``template``'s row, each a trace of its own from ``first`` on."""
    rows = template.take([0] * count)
    ids = pa.array([f"{first + n:032x}" for n in range(count)], pa.string())
    rows = rows.set_column(rows.schema.get_field_index("trace_id"), "trace_id", ids)
    return SpanBatch(rows)


def test_a_backlog_commits_in_groups_that_fill_a_row_group(
    db_path: Path, hold_writer: WriterHold
) -> None:
    """A backlog is committed a DuckDB row group (122,880 rows) at a time: a transaction
    that fills one has it written compressed straight to the file instead of through the
    log, so 26 waiting batches of 10,000 spans take two commits, and every span lands."""
    store = DuckDBStore(db_path)
    try:
        template = SpanBatch.from_records(trace("0" * 32, 1)).table
        batches = [_distinct_spans(template, 1 + n * 10_000, 10_000) for n in range(26)]
        with hold_writer(store):
            commits_before = store.commits
            futures = [store.write(batch) for batch in batches]
        for future in futures:
            future.result(timeout=WAIT_S)
        assert store.commits - commits_before == 2
        assert store.counts().spans == 1 + 260_000  # the hold's span and the backlog
    finally:
        store.close()


def test_folds_come_after_so_many_rows_however_few_commits(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits of full row groups put many spans between folds: the writer also folds
    (and checkpoints, emptying the log) once ``COMPACT_EVERY_ROWS`` rows have come in,
    long before ``COMPACT_EVERY`` commits. Idle folds are put off so only that bound can
    fold here."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    monkeypatch.setattr(writer, "COMPACT_EVERY_ROWS", 15_000)
    store = DuckDBStore(db_path)
    wal = db_path.with_name(db_path.name + ".wal")
    try:
        template = SpanBatch.from_records(trace("0" * 32, 1)).table
        store.write(_distinct_spans(template, 1, 10_000)).result(timeout=WAIT_S)
        assert wal.stat().st_size > 0, "the first commit is in the log, not folded"
        store.write(_distinct_spans(template, 10_001, 10_000)).result(timeout=WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while wal.exists() and wal.stat().st_size > 0:
            assert time.monotonic() < deadline, "20,000 rows in two commits were not folded"
            time.sleep(0.05)
        assert store.counts().spans == 20_000
    finally:
        store.close()


def test_bad_batch_fails_alone(db_path: Path, hold_writer: WriterHold) -> None:
    """A batch the database rejects fails its own write only; batches committed with it land."""
    store = DuckDBStore(db_path)
    try:
        good_before = trace("1" * 32, 2)
        good_after = trace("3" * 32, 2)
        bad_rows = SpanBatch.from_records(trace("2" * 32, 2)).table.to_pylist()
        bad_rows[1]["service_name"] = None  # the table declares service_name NOT NULL
        bad = SpanBatch(pa.Table.from_pylist(bad_rows, schema=SPAN_SCHEMA))

        with hold_writer(store):
            futures = [
                store.write(SpanBatch.from_records(good_before)),
                store.write(bad),
                store.write(SpanBatch.from_records(good_after)),
            ]

        futures[0].result(timeout=WAIT_S)
        futures[2].result(timeout=WAIT_S)
        with pytest.raises(StoreError, match="writing the batch failed"):
            futures[1].result(timeout=WAIT_S)
        assert store.get_trace("1" * 32) == good_before
        assert store.get_trace("2" * 32) == []
        assert store.get_trace("3" * 32) == good_after
    finally:
        store.close()


def test_second_process_cannot_open_a_held_file(db_path: Path) -> None:
    """Opening a file another process holds fails with a store error naming the file."""
    store = DuckDBStore(db_path)
    try:
        opened = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path;"
                "from threadline.server.storage.duckdb import DuckDBStore;"
                "DuckDBStore(Path(sys.argv[1]))",
                str(db_path),
            ],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    finally:
        store.close()

    assert opened.returncode != 0
    assert "StoreError: cannot open the span store at" in opened.stderr
    assert str(db_path) in opened.stderr


def test_invalid_queue_bound_is_refused(db_path: Path) -> None:
    """A queue bound below one is a clear error, not a store that refuses every write."""
    with pytest.raises(ValueError, match="max_pending_batches"):
        DuckDBStore(db_path, max_pending_batches=0)
    assert not db_path.exists()
