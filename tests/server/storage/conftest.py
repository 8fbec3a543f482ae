"""Fixtures for the storage suites: every backend on a real database, and a held writer.

The contract suite asks for ``store`` (or ``open_store`` for non-default options);
both are parametrised over ``BACKENDS``, so a new backend joins the whole suite by
adding one opener here: DuckDB on a file, and ClickHouse through chDB (the engine in
this process, in a fresh directory per test; chDB allows one open path per process,
so each store is closed before the next test opens another).

A test (or module) that uses ``Store`` methods a backend does not offer yet says so
with ``@pytest.mark.store_methods("name", ...)``; it is then not generated for that
backend at all (a backend's gaps are listed in docs/scale.md, not hidden as skips).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

import pytest

from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore, writer
from threadline.store_url import StoreUrl

StoreOpener = Callable[..., Store]
WriterHold = Callable[[Store], AbstractContextManager[None]]

# Trace id of the spans ``hold_writer`` writes to occupy the writer.
_HOLD_TRACE_ID: Final = "f" * 32
_HOLD_ATTEMPTS: Final = 20
_HOLD_TIMEOUT_S: Final = 30.0


def _open_duckdb(directory: Path, **options: int) -> Store:
    return DuckDBStore(directory / "spans.duckdb", **options)


def _open_chdb(directory: Path, **options: int) -> Store:
    from threadline.server.storage.clickhouse.store import ClickHouseStore

    return ClickHouseStore(StoreUrl(backend="chdb", path=directory / "chdb"), **options)


def _chdb_missing() -> tuple[str, ...]:
    from threadline.server.storage.clickhouse.store import NOT_YET

    return NOT_YET


BACKENDS: Final[dict[str, Callable[..., Store]]] = {"duckdb": _open_duckdb, "chdb": _open_chdb}
# The Store methods each backend does not offer yet (it raises StoreUnsupported).
MISSING: Final[dict[str, Callable[[], tuple[str, ...]]]] = {
    "duckdb": lambda: (),
    "chdb": _chdb_missing,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test of a store runs once per backend that offers the methods it needs."""
    if "open_store" not in metafunc.fixturenames:
        return
    needed = {
        name for marker in metafunc.definition.iter_markers("store_methods") for name in marker.args
    }
    offering = [name for name in sorted(BACKENDS) if not needed & set(MISSING[name]())]
    metafunc.parametrize("open_store", offering, indirect=True)


@pytest.fixture
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Opens a store of the parametrised backend with the given options; closes it after."""
    opened: list[Store] = []

    def open_with(**options: int) -> Store:
        store = BACKENDS[request.param](tmp_path, **options)
        opened.append(store)
        return store

    yield open_with
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreOpener) -> Store:
    return open_store()


@pytest.fixture
def duckdb_folding_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DuckDBStore]:
    """A DuckDB store whose writer folds only when told (``compact_rollups``), never
    when idle: a test decides which spans each fold takes in."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def hold_writer() -> WriterHold:
    """A context manager that keeps a store's writer busy until the block exits.

    It writes a one-span batch and blocks in that write's done-callback, which runs
    on the thread that resolves the future. While held, writes queue up unwritten.
    """

    @contextmanager
    def held(store: Store) -> Iterator[None]:
        release = threading.Event()
        holding = threading.Event()
        resolved_inline = threading.Event()
        caller = threading.get_ident()

        def block(_: Future[None]) -> None:
            if threading.get_ident() == caller:
                # The write finished before the callback was added, so
                # ``add_done_callback`` ran it here: nothing is held, try again.
                resolved_inline.set()
                return
            holding.set()
            release.wait(timeout=_HOLD_TIMEOUT_S)

        try:
            for attempt in range(_HOLD_ATTEMPTS):
                resolved_inline.clear()
                hold_span = SpanRecord(
                    trace_id=_HOLD_TRACE_ID,
                    span_id=f"{attempt:016x}",
                    parent_span_id=None,
                    service_name="hold",
                    name="hold",
                    kind=SpanKind.INTERNAL,
                    start_ns=attempt,
                    end_ns=attempt + 1,
                )
                store.write(SpanBatch.from_records([hold_span])).add_done_callback(block)
                if not resolved_inline.is_set():
                    break
            if not holding.wait(timeout=_HOLD_TIMEOUT_S):
                pytest.fail("the store's writer never picked up the holding write")
            yield
        finally:
            release.set()

    return held
