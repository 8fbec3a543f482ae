"""Two writers on one ClickHouse database count every call, hop and orphan once.

Several `threadline serve` processes may write to one ClickHouse server. Here two
writers (two ``staging.Counter`` with their own ids, on one chDB database) take the
workload's batches in turn, their steps driven one by one: A stages and inserts its
batch, B stages and inserts its own at a chosen point of A's count (before it, or
before any one of its statements), then A counts and B counts. Children often
arrive before their parents, so many calls have their two sides in the two writers'
batches. The fleet edges, the calls (SLO reads), the hops and the orphans must be
DuckDB's for the same spans, as with one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from support.rollup_workload import WAIT_S, WINDOW, batches, slo_answers
from threadline.server.aggregates import ServiceMap
from threadline.server.batch import SpanBatch
from threadline.server.storage.clickhouse import schema, staging
from threadline.server.storage.clickhouse.client import Connection, Params, Row
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

# Where B's insert lands in A's count: 0 before it starts, k before its k-th statement.
POINTS: Final = 8


class _Interleaved(Connection):
    """A writer's connection (the same chDB client) that runs another writer's step
    just before its own ``at``-th statement once ``arm`` is called."""

    def __init__(self, inner: Connection) -> None:
        self.__dict__.update(inner.__dict__)
        self._step: Callable[[], None] | None = None
        self._at = 0
        self._calls = 0

    def arm(self, step: Callable[[], None], at: int) -> None:
        self._step, self._at, self._calls = step, at, 0

    def finish(self) -> None:
        """Run the step now if A's count had fewer statements than ``at``."""
        step, self._step = self._step, None
        if step is not None:
            step()

    def _next(self) -> None:
        self._calls += 1
        if self._step is not None and self._calls >= self._at:
            self.finish()

    def rows(self, sql: str, params: Params | None = None, *, doing: str) -> list[Row]:
        self._next()
        return super().rows(sql, params, doing=doing)

    def command(self, sql: str, params: Params | None = None, *, doing: str) -> None:
        self._next()
        super().command(sql, params, doing=doing)


def _insert(connection: Connection, table: pa.Table) -> None:
    connection.insert_arrow(schema.SPANS_INCOMING, table, doing="writing spans")


def _bounds(table: pa.Table) -> tuple[int, int]:
    starts = table["start_ns"]
    return pc.min(starts).as_py(), pc.max(starts).as_py()


def _edges(found: ServiceMap) -> list[tuple[object, ...]]:
    edges = [(e.caller, e.callee, e.kind, e.stats.calls, e.stats.errors) for e in found.edges]
    return edges + [
        (e.caller, e.caller_operation, e.callee, e.callee_operation, e.kind, e.stats.calls)
        for e in found.operation_edges
    ]


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DuckDBStore, ClickHouseStore]]:
    """DuckDB written by its writer; chDB by two writers taking the batches in turn."""
    directory: Path = tmp_path_factory.mktemp("writers")
    duck = DuckDBStore(directory / "spans.duckdb")
    house = ClickHouseStore(StoreUrl(backend="chdb", path=directory / "chdb"))
    try:
        connection, tables = house._connection, house._tables
        interleaved = _Interleaved(connection)
        a = staging.Counter(interleaved, tables, writer="a")
        b = staging.Counter(connection, tables, writer="b")
        written = batches()
        for turn, start in enumerate(range(0, len(written) - 1, 2)):
            mine, theirs = (SpanBatch.from_records(r).table for r in written[start : start + 2])
            for records in written[start : start + 2]:
                duck.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)

            def b_inserts(theirs: pa.Table = theirs) -> None:
                b.stage(theirs)
                _insert(connection, theirs)

            a.stage(mine)
            _insert(connection, mine)
            interleaved.arm(b_inserts, turn % POINTS)
            a.count(*_bounds(mine))
            interleaved.finish()
            b.count(*_bounds(theirs))
        # DuckDB is the reference here: fold it now, so its idle fold cannot land
        # between the statements of one of its reads below.
        duck.fold_pending()
        yield duck, house
    finally:
        duck.close()
        house.close()


def test_two_writers_count_the_calls_once(stores: tuple[DuckDBStore, ClickHouseStore]) -> None:
    duck, house = stores
    found = _edges(house.service_map(WINDOW))
    assert found == _edges(duck.service_map(WINDOW))
    assert found  # the workload reached the edges
    assert slo_answers(house) == slo_answers(duck)


def test_two_writers_count_hops_and_orphans_once(
    stores: tuple[DuckDBStore, ClickHouseStore],
) -> None:
    duck, house = stores
    found, expected = house.propagation(WINDOW), duck.propagation(WINDOW)
    assert found == expected
    assert found.orphans
    assert found.message_hops


def test_no_staged_rows_are_left(stores: tuple[DuckDBStore, ClickHouseStore]) -> None:
    _, house = stores
    rows = house._connection.rows("SELECT count() FROM threadline.staged_spans", doing="reading")
    assert rows == [(0,)]
