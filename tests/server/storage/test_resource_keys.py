"""A search looks for an attribute pair on resources only when a stored resource carries
its key (``storage/duckdb/resource_keys.py``), and never misses a pair for it: the keys
are known before a batch commits, recorded with it, and read back when a store opens."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pytest

from support.old_stores import unpack
from support.spans import span_record
from support.statements import Statement, statements
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.resource_keys import MAX_KEYS, ResourceKeys, fill
from threadline.server.storage.duckdb.schema import RESOURCE_KEYS_DDL
from threadline.server.storage.duckdb.sql import fetcher

MS: Final = 1_000_000
T0: Final = 1_790_000_000 * 1_000_000_000
SERVICE_ONLY: Final = {"service.name": "web"}
REGION_EU: Final = (("region", "eu"),)


def _trace(n: int, *, own: dict[str, str], resource: dict[str, str]) -> SpanRecord:
    start = T0 + n * 10 * MS
    return span_record(f"{n + 1:032x}", "r", None, "web", "GET /", start, start + (n + 1) * MS,
                       attributes=own, resource=resource)  # fmt: skip


def _reads_resources(ran: list[Statement]) -> bool:
    return any("resource" in sql for sql, _ in ran)


def _found(store: DuckDBStore) -> tuple[set[str], bool]:
    """The traces a search for region=eu finds, and whether it read any resource."""
    with statements() as ran:
        found = {s.trace_id for s in store.search_traces(TraceQuery(attributes=REGION_EU))}
    assert ran
    return found, _reads_resources(ran)


def test_a_key_no_resource_carries_is_looked_for_on_span_attributes_alone(
    tmp_path: Path,
) -> None:
    """Until a resource carries ``region``, its search leaves the resources unread; the
    batch that brings the first one makes the next search find the trace it names,
    before and after the writer folds it."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        spans = [_trace(n, own={"region": "eu"} if n % 2 else {}, resource=SERVICE_ONLY)
                 for n in range(20)]  # fmt: skip
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        store.compact_rollups()
        own = {s.trace_id for s in spans if s.attributes}
        assert _found(store) == (own, False)

        on_resource = _trace(40, own={}, resource={**SERVICE_ONLY, "region": "eu"})
        store.write(SpanBatch.from_records([on_resource])).result(timeout=30)
        assert _found(store) == (own | {on_resource.trace_id}, True)
        store.compact_rollups()
        assert _found(store) == (own | {on_resource.trace_id}, True)
        assert store.search_traces(TraceQuery(attributes=REGION_EU)) == store.scan.search_traces(
            TraceQuery(attributes=REGION_EU)
        )
    finally:
        store.close()


def test_a_reopened_store_reads_its_resources_keys_back(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    resource = {**SERVICE_ONLY, "region": "eu", "deployment.environment": "prod"}
    try:
        spans = [_trace(n, own={}, resource=resource if n == 3 else SERVICE_ONLY)
                 for n in range(10)]  # fmt: skip
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
    finally:
        store.close()
    reopened = DuckDBStore(path)
    try:
        assert _found(reopened) == ({spans[3].trace_id}, True)
    finally:
        reopened.close()


def test_the_keys_are_the_resources_top_level_keys() -> None:
    """Only keys some resource holds; a key nested in a value, or a value, is none."""
    keys = ResourceKeys()
    documents = ['{"service.name":"web","region":"eu"}', '{"host":{"name":"h1"}}', "{}"] * 3
    keys.take_in(pa.chunked_array([pa.array(documents)]))
    assert [keys.may_carry(k) for k in ("service.name", "region", "host", "name", "eu")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def _recorded_keys(path: Path) -> list[str]:
    """The rows of ``resource_keys``, read with DuckDB alone."""
    with duckdb.connect(str(path)) as connection:
        rows = connection.execute("SELECT key FROM resource_keys ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_a_store_opens_without_reading_its_spans_resources(tmp_path: Path) -> None:
    """The keys are recorded with the spans that bring them, once each however many
    batches carry them, and a store opens by reading them, not the spans' resources
    (whose distinct documents grow with the store when a sender puts per-request
    values there)."""
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    try:
        for n in range(3):
            resource = {**SERVICE_ONLY, "region": "eu", "request.id": f"r{n}"}
            batch = [_trace(n, own={}, resource=resource), _trace(10 + n, own={}, resource={})]
            store.write(SpanBatch.from_records(batch)).result(timeout=30)
    finally:
        store.close()
    assert _recorded_keys(path) == ["region", "request.id", "service.name"]

    with statements() as opening:
        reopened = DuckDBStore(path)
    try:
        assert any("resource_keys" in sql for sql, _ in opening)
        assert [sql for sql, _ in opening if _RESOURCE_COLUMN.search(sql)] == []
        on_resources = {_trace(n, own={}, resource={}).trace_id for n in range(3)}
        assert _found(reopened) == (on_resources, True)
    finally:
        reopened.close()


_RESOURCE_COLUMN: Final = re.compile(r"\bresource\b")


def test_keys_of_a_transaction_that_failed_are_recorded_by_the_next(tmp_path: Path) -> None:
    """A key taken in stays searchable on resources, and until a transaction recording
    it commits, the next batch carrying it records it again."""
    documents = pa.chunked_array([pa.array(['{"service.name":"web","region":"eu"}'])])
    with duckdb.connect(str(tmp_path / "keys.duckdb")) as connection:
        connection.execute(RESOURCE_KEYS_DDL)

        run = fetcher(connection)

        keys = ResourceKeys.stored(run)
        new = keys.take_in(documents)
        connection.execute("BEGIN TRANSACTION")
        keys.record(run, new)
        connection.execute("ROLLBACK")
        assert keys.may_carry("region")

        again = keys.take_in(documents)
        assert again == new == {"service.name", "region"}
        keys.record(run, again)
        keys.committed(again)
        assert keys.take_in(documents) == frozenset()
        assert sorted(row[0] for row in run("SELECT key FROM resource_keys", [])) == [
            "region",
            "service.name",
        ]


def test_an_older_store_gets_the_keys_its_spans_resources_carry(tmp_path: Path) -> None:
    """Version 24 fills the table from the stored spans, so a search by a resource's
    pair on an upgraded store finds every trace it did before."""
    path = unpack(23, tmp_path)
    store = DuckDBStore(path)
    try:
        query = TraceQuery(attributes=(("host.name", "host-2"),), limit=100)
        found = store.search_traces(query)
        assert len(found) == 30
        assert found == store.scan.search_traces(query)
    finally:
        store.close()
    assert _recorded_keys(path) == ["host.name", "service.name"]


def _flooded(n: int) -> SpanRecord:
    """A span whose resource carries a hundred keys of its own."""
    keys = {f"request.{n}.{i}": "x" for i in range(100)}
    return _trace(n, own={}, resource={**SERVICE_ONLY, **keys})


def test_a_flood_of_resource_keys_makes_any_key_searched_on_resources(tmp_path: Path) -> None:
    """Past ``MAX_KEYS`` keys the store stops listing them: one row says any key may be
    on a resource, and a search finds a flooded key's pair there, reopened too."""
    path = tmp_path / "spans.duckdb"
    flood = [_flooded(n) for n in range(MAX_KEYS // 100 + 1)]
    query = TraceQuery(attributes=(("request.7.3", "x"),))
    store = DuckDBStore(path)
    try:
        store.write(SpanBatch.from_records(flood)).result(timeout=30)
        store.write(SpanBatch.from_records([_flooded(5_000)])).result(timeout=30)
        with statements() as ran:
            assert [s.trace_id for s in store.search_traces(query)] == [flood[7].trace_id]
        assert _reads_resources(ran)
    finally:
        store.close()
    assert _recorded_keys(path) == [None]
    reopened = DuckDBStore(path)
    try:
        assert [s.trace_id for s in reopened.search_traces(query)] == [flood[7].trace_id]
    finally:
        reopened.close()


@pytest.mark.parametrize("documents", [1, MAX_KEYS // 100 + 1])
def test_the_upgrade_records_the_keys_or_any_key_past_the_bound(
    documents: int, tmp_path: Path
) -> None:
    """Version 24's fill lists the stored resources' keys, or past ``MAX_KEYS`` records
    that any key may be carried."""
    resources = [json.dumps(_flooded(n).resource) for n in range(documents)]
    with duckdb.connect(str(tmp_path / "keys.duckdb")) as connection:
        connection.execute(f"CREATE TABLE spans (resource VARCHAR); {RESOURCE_KEYS_DDL}")
        connection.execute("INSERT INTO spans SELECT unnest(?::VARCHAR[])", [resources * 2])

        run = fetcher(connection)

        fill(run)
        recorded = [row[0] for row in run("SELECT key FROM resource_keys ORDER BY 1", [])]
    if documents == 1:
        assert recorded == sorted(["service.name", *(f"request.0.{i}" for i in range(100))])
    else:
        assert recorded == [None]
