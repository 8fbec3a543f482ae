"""DuckDB's query threads, as ``duckdb_threads`` (``threadline serve --duckdb-threads``) sets them.

A commit's statements barely run in parallel, so on a machine whose cores decode
requests a second DuckDB thread costs the writer CPU and gains it little
(docs/performance.md, "One DuckDB thread or two for the commit"). The setting is one
per database, so it holds for reads too, and it must survive the store reopening its
file (compaction).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from support.processes import refused_serve
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings, load

THREADS = "SELECT current_setting('threads')"


def _spans(count: int) -> list[SpanRecord]:
    return [
        SpanRecord(f"{n:032x}", f"{n:016x}", None, "web", "GET /", SpanKind.SERVER, n, n + 5)
        for n in range(count)
    ]


def test_a_store_opened_with_one_thread_keeps_it_after_compaction(tmp_path: Path) -> None:
    """One thread as asked, through a compaction's reopening; the spans all still read."""
    store = DuckDBStore(tmp_path / "spans.duckdb", threads=1)
    try:
        store.write(SpanBatch.from_records(_spans(50))).result(timeout=30)
        assert store._fetch(THREADS, []) == [(1,)]
        store.compact()
        assert store._fetch(THREADS, []) == [(1,)]
        assert store.counts().spans == 50
    finally:
        store.close()


def test_by_default_duckdb_keeps_its_own_thread_count(tmp_path: Path) -> None:
    """Unset, the store leaves DuckDB's default (a thread per core it sees); below 0 is
    refused."""
    with duckdb.connect() as fresh:
        default = fresh.execute(THREADS).fetchall()
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        assert store._fetch(THREADS, []) == default
    finally:
        store.close()
    with pytest.raises(ValueError, match="threads"):
        DuckDBStore(tmp_path / "other.duckdb", threads=-1)


def test_the_setting_comes_from_the_environment_and_serve_refuses_negatives(
    tmp_path: Path,
) -> None:
    """``THREADLINE_DUCKDB_THREADS`` sets it; `serve --duckdb-threads -1` exits, saying why,
    before it creates a store."""
    assert load(ServerSettings, environ={"THREADLINE_DUCKDB_THREADS": "1"}).duckdb_threads == 1
    db = tmp_path / "spans.duckdb"
    result = refused_serve(tmp_path, "--duckdb-threads", "-1", "--db", str(db))
    assert result.returncode != 0
    assert "duckdb_threads must be 0" in result.stderr
    assert not db.exists()
