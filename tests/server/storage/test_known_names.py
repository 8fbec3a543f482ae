"""A writer skips a commit's statements whose answer it already knows: registering
operation names it registered before, asking whether a table it just created is empty."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from unittest.mock import patch

import duckdb

from support.spans import span_record
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore, known_names, rollups
from threadline.server.storage.duckdb.sql import wrote_rows

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE
WINDOW: Final = TimeWindow(T0 - MINUTE, T0 + 10 * MINUTE)


def _request(n: int, service: str, name: str, **fields: object) -> SpanRecord:
    return span_record(f"{n + 1:032x}", "r", None, service, name, T0 + n, T0 + n + MS, **fields)


def _requests(store: DuckDBStore) -> dict[tuple[str, str], int]:
    return {(r.service, r.operation): r.stats.requests for r in store.operation_red(WINDOW)}


def test_a_batch_of_known_names_skips_registering_them(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    registered = patch.object(rollups, "_register_names", wraps=rollups._register_names)
    try:
        with registered as register:
            store.write(SpanBatch.from_records([_request(0, "web", "GET /")])).result(timeout=30)
            store.write(SpanBatch.from_records([_request(1, "web", "GET /")])).result(timeout=30)
            assert register.call_count == 1  # the second batch held a known name only
            later = [_request(2, "web", "GET /"), _request(3, "cart", "add")]
            store.write(SpanBatch.from_records(later)).result(timeout=30)
            assert register.call_count == 2  # a new name: the batch registers
            store.delete_traces(["f" * 32])  # a task: the writer forgets what it knew
            store.write(SpanBatch.from_records([_request(4, "web", "GET /")])).result(timeout=30)
            assert register.call_count == 3
        assert _requests(store) == {("web", "GET /"): 4, ("cart", "add"): 1}
    finally:
        store.close()


def test_a_name_over_the_cap_is_kept_once_an_erasure_makes_room(tmp_path: Path) -> None:
    """A name counted as "(other)" stays known to the writer; an erasure that removes a
    kept name makes room for it, and its next span registers it."""
    cap = rollups.OPERATION_CAP
    full = [_request(n, "web", f"GET /item/{n:04d}") for n in range(cap - 1)]
    full.append(_request(cap - 1, "web", "GET /mine", user_id="user-7"))
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(SpanBatch.from_records(full)).result(timeout=30)
        store.write(SpanBatch.from_records([_request(cap, "web", "GET /late")])).result(timeout=30)
        assert _requests(store)[("web", rollups.OTHER)] == 1
        store.erase_user(["user-7"])
        again = _request(cap + 1, "web", "GET /late")
        store.write(SpanBatch.from_records([again])).result(timeout=30)
        counted = _requests(store)
    finally:
        store.close()
    assert counted[("web", "GET /late")] == 1
    assert counted[("web", rollups.OTHER)] == 1
    assert ("web", "GET /mine") not in counted


def test_a_flood_of_names_is_remembered_only_up_to_the_bound() -> None:
    known = known_names.KnownNames()
    flood = frozenset(("web", f"GET /item/{n}") for n in range(known_names.MAX_REMEMBERED + 1))
    known.committed(flood)
    assert not known.all_known(flood)
    few = frozenset({("web", "GET /")})
    known.committed(few)
    assert known.all_known(few)
    known.forget()
    assert not known.all_known(few)


def test_a_created_table_says_whether_it_holds_rows() -> None:
    """The commit's lookups of lonely spans, adopted orphans and message spans run only
    when the statement that set them apart wrote a row: DuckDB answers a
    ``CREATE TABLE ... AS`` with the rows it wrote."""
    connection = duckdb.connect()
    try:
        empty = connection.execute("CREATE TEMP TABLE e AS SELECT * FROM range(0)").fetchall()
        full = connection.execute("CREATE TEMP TABLE f AS SELECT * FROM range(3)").fetchall()
    finally:
        connection.close()
    assert not wrote_rows(empty)
    assert wrote_rows(full)
    assert wrote_rows([])  # no answer: it may have written rows, so they are read
