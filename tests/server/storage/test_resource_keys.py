"""A search looks for an attribute pair on resources only when a stored resource carries
its key (``storage/duckdb/resource_keys.py``), and never misses a pair for it: the keys
are known before a batch commits, and read back when a store opens."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pyarrow as pa

from support.spans import span_record
from support.statements import Statement, statements
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.resource_keys import ResourceKeys

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
    keys.add_batch(pa.chunked_array([pa.array(documents)]))
    assert [keys.may_carry(k) for k in ("service.name", "region", "host", "name", "eu")] == [
        True,
        True,
        True,
        False,
        False,
    ]
