"""What only the ClickHouse rollups have: the bucket function in ClickHouse's SQL, the
constants they share with DuckDB's, and a version 1 database filled on open (chDB)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.aggregates import EdgeKind, TimeWindow
from threadline.server.analysis import latency_bounds, sketch
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.clickhouse import rollup_schema, schema, versions
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import rollups as duckdb_rollups
from threadline.store_url import StoreUrl

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
DAY: Final = TimeWindow(T0 - 3600 * S, T0 + 3 * 86_400 * S)


@pytest.fixture
def url(tmp_path: Path) -> StoreUrl:
    return StoreUrl(backend="chdb", path=tmp_path / "chdb")


def test_the_stores_share_their_rollup_constants() -> None:
    """Both stores cap names, pair spans and key minutes alike, so their rollups agree."""
    assert rollup_schema.OPERATION_CAP == duckdb_rollups.OPERATION_CAP
    assert rollup_schema.PAIR_HORIZON_NS == duckdb_rollups.PAIR_HORIZON_NS
    assert rollup_schema.MINUTE_NS == duckdb_rollups.MINUTE_NS
    assert rollup_schema.OTHER == duckdb_rollups.OTHER


def test_buckets_and_slots_in_clickhouse_match_the_sketch(url: StoreUrl) -> None:
    """ClickHouse's ``bucket_sql`` and ``slot_sql`` give ``sketch.bucket_index`` and
    ``latency_bounds.slot`` for durations across every scale, bounds included."""
    durations = sorted(
        {0, -5, 1, 2, 3, 999, 1_000, 80 * MS, 10**15}
        | {round(bound * S) + delta for bound in latency_bounds.BOUNDS_S for delta in (-1, 0, 1)}
        | {int(1.37**n) for n in range(1, 110)}
    )
    connection = Connection(url)
    try:
        rows = connection.rows(
            f"SELECT d, {rollup_schema.bucket_sql('d')} AS b, {rollup_schema.slot_sql('b')}"
            " FROM (SELECT arrayJoin({ds:Array(Int64)}) AS d) ORDER BY d",
            {"ds": durations},
            doing="test",
        )
    finally:
        connection.close()
    expected = [
        (d, sketch.bucket_index(d), latency_bounds.slot(sketch.bucket_index(d))) for d in durations
    ]
    assert [(int(d), int(b), int(k)) for d, b, k in rows] == expected


def _call(trace: str, at_ns: int, *, failed: bool = False) -> list[SpanRecord]:
    status = {"status": StatusCode.ERROR} if failed else {}
    return [
        span_record(trace, "a1", None, "web", "GET /pay", at_ns, at_ns + 100 * MS),
        span_record(trace, "a2", "a1", "web", "POST /charge", at_ns + MS, at_ns + 90 * MS,
                    kind=SpanKind.CLIENT),
        span_record(trace, "a3", "a2", "payments", "charge", at_ns + 2 * MS, at_ns + 82 * MS,
                    kind=SpanKind.SERVER, **status),
    ]  # fmt: skip


def _version_1(url: StoreUrl, spans: list[SpanRecord]) -> None:
    """A database as version 1 left it: its tables (no rollups), spans, version 1."""
    connection = Connection(url)
    db = schema.quote(connection.database)
    rollup_tables = (*rollup_schema.TABLES, rollup_schema.OPERATIONS_MV, rollup_schema.EXEMPLARS_MV)
    try:
        for statement in schema.statements(connection.database):
            if not any(f"{db}.{table} " in statement for table in rollup_tables):
                connection.command(statement, doing="test")
        connection.insert_arrow(
            schema.SPANS_INCOMING, SpanBatch.from_records(spans).table, doing="test"
        )
        connection.command(
            f"INSERT INTO {db}.{schema.VERSION_TABLE} VALUES (1, 0, 'threadline 1')", doing="test"
        )
        tables = connection.rows(f"SHOW TABLES FROM {db}", doing="test")
        assert not {str(row[0]) for row in tables} & set(rollup_tables)
    finally:
        connection.close()


def test_a_version_1_database_gets_its_rollups_on_open(url: StoreUrl) -> None:
    """Opening a database written before the rollups counts its stored spans, days
    apart and across a day's edge, and later writes add to them."""
    late = T0 + 86_400 * S
    spans = _call("1" * 32, T0) + _call("2" * 32, T0 + S, failed=True) + _call("3" * 32, late)
    _version_1(url, spans)
    store = ClickHouseStore(url)
    try:
        assert store.schema_version == schema.SCHEMA_VERSION == 4
        red = {(r.service, r.operation): (r.stats.requests, r.stats.errors)
               for r in store.operation_red(DAY)}  # fmt: skip
        assert red == {("payments", "charge"): (3, 1), ("web", "GET /pay"): (3, 0)}
        found = store.service_map(DAY)
        assert [(e.caller, e.callee, e.kind, e.stats.calls) for e in found.edges] == [
            ("web", "payments", EdgeKind.CALL, 3)
        ]
        next_day = TimeWindow(late, late + MINUTE)
        assert [r.stats.requests for r in store.operation_red(next_day)] == [1, 1]
        store.write(SpanBatch.from_records(_call("4" * 32, T0 + 2 * S))).result(timeout=30)
        assert store.service_map(DAY).edges[0].stats.calls == 4
    finally:
        store.close()
    again = ClickHouseStore(url)  # version 4 now: nothing is counted twice
    try:
        assert again.service_map(DAY).edges[0].stats.calls == 4
    finally:
        again.close()


def test_compaction_merges_the_deltas_a_deletion_cancels(url: StoreUrl) -> None:
    """A trace written then deleted leaves no rollup row once the store is compacted."""
    store = ClickHouseStore(url)
    try:
        store.write(SpanBatch.from_records(_call("1" * 32, T0))).result(timeout=30)
        store.delete_traces(["1" * 32])
        store.compact()
        rows = store._fetch(
            f"SELECT count() FROM {schema.quote('threadline')}.{rollup_schema.OPERATIONS}", {}
        )
        assert rows == [(0,)]
        assert store.operation_red(DAY) == []
    finally:
        store.close()


def test_erasure_leaves_no_name_only_the_user_had(url: StoreUrl) -> None:
    """A span name that carried what the erased user did leaves the kept names and
    every rollup row; a name other spans still have stays."""
    store = ClickHouseStore(url)
    try:
        note = span_record("1" * 32, "b1", None, "web", "checkout for alice's gift", T0, T0 + MS,
                           user_id="alice")  # fmt: skip
        shared = span_record("2" * 32, "c1", None, "web", "GET /pay", T0, T0 + MS, user_id="alice")
        batch = [note, shared, *_call("3" * 32, T0)]
        store.write(SpanBatch.from_records(batch)).result(timeout=30)
        assert store.erase_user(["alice"]).erased_spans == 2
        db = schema.quote("threadline")
        names = store._fetch(f"SELECT DISTINCT operation FROM {db}.{rollup_schema.NAMES}", {})
        assert sorted(str(row[0]) for row in names) == ["GET /pay", "POST /charge", "charge"]
        for table in (rollup_schema.OPERATIONS, rollup_schema.EXEMPLARS):
            rows = store._fetch(f"SELECT operation FROM {db}.{table}", {})
            assert "checkout for alice's gift" not in {str(row[0]) for row in rows}
        assert [r.stats.requests for r in store.operation_red(DAY)] == [1, 1]
    finally:
        store.close()


# Columns version 3 left to ClickHouse's default compression, one of each kind of table.
_VERSION_3_DEFAULT_CODECS: Final = (
    ("trace_rollup", "services"),
    ("rollup_operations", "spans"),
    ("rollup_edges", "caller"),
    ("request_rollup", "bucket"),
    ("orphan_spans", "trace_id"),
)

# What version 2 staged batches through: a view copying every insert into a table one
# writer emptied for all, and a table of keys per writer.
_VERSION_2_STAGING: Final = (
    "CREATE TABLE {db}.pending_pairs (trace_id String, span_id String)"
    " ENGINE = MergeTree ORDER BY (trace_id, span_id)",
    "CREATE MATERIALIZED VIEW {db}.pending_pairs_mv TO {db}.pending_pairs AS"
    " SELECT trace_id, span_id FROM {db}.spans",
    "CREATE TABLE {db}.rollup_pending (writer String, trace_id String, span_id String)"
    " ENGINE = MergeTree PARTITION BY writer ORDER BY (trace_id, span_id)",
)


def test_a_version_2_database_loses_its_shared_staging_on_open(url: StoreUrl) -> None:
    """Opening a version 2 database drops the view and tables batches were staged in
    before, records the current version, and its spans and later writes count as before."""
    store = ClickHouseStore(url)
    try:
        store.write(SpanBatch.from_records(_call("1" * 32, T0))).result(timeout=30)
        db = schema.quote("threadline")
        for statement in _VERSION_2_STAGING:
            store._command(statement.format(db=db), {})
        _record_version(store, 2)
    finally:
        store.close()
    again = ClickHouseStore(url)
    try:
        assert again.schema_version == 4
        rows = again._fetch(f"SELECT version FROM {again._tables.versions} ORDER BY version", {})
        assert rows == [(2,), (4,)]
        tables = {str(row[0]) for row in again._fetch(f"SHOW TABLES FROM {db}", {})}
        assert not {"pending_pairs", "pending_pairs_mv", "rollup_pending"} & tables
        assert rollup_schema.STAGED in tables
        again.write(SpanBatch.from_records(_call("2" * 32, T0 + S))).result(timeout=30)
        assert again.service_map(DAY).edges[0].stats.calls == 2
        staged = again._fetch(f"SELECT count() FROM {db}.{rollup_schema.STAGED}", {})
        assert staged == [(0,)]
    finally:
        again.close()


def test_a_version_3_database_keeps_resource_values_as_low_cardinality_on_open(
    url: StoreUrl,
) -> None:
    """Opening a version 3 database changes the span table's resource column to
    ``LowCardinality`` values and gives every column of the span and rollup tables the
    codec the schema names, and every span reads back as it was written."""
    resource = {"service.name": "web", "host.name": "node-7", "process.pid": 4242}
    spans = [replace(span, resource=resource) for span in _call("1" * 32, T0)]
    store = ClickHouseStore(url)
    try:
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        store._command(
            f"ALTER TABLE {store._tables.spans} MODIFY COLUMN resource"
            " Map(LowCardinality(String), String) CODEC(ZSTD(1)) SETTINGS mutations_sync = 2",
            {},
        )
        # Version 3's codecs: the rollups' and the trace rollup's values had none.
        for table, column in _VERSION_3_DEFAULT_CODECS:
            removal = f"MODIFY COLUMN {column} REMOVE CODEC"
            store._command(f"ALTER TABLE `threadline`.{table} {removal}", {})
        store._command(
            f"ALTER TABLE {store._tables.spans} MODIFY COLUMN length_ns CODEC(ZSTD(1)),"
            " MODIFY COLUMN session_id CODEC(ZSTD(1)), MODIFY COLUMN user_id CODEC(ZSTD(1))",
            {},
        )
        _record_version(store, 3)
    finally:
        store.close()
    again = ClickHouseStore(url)
    try:
        assert again.schema_version == 4
        column = again._fetch(
            "SELECT type FROM system.columns WHERE database = {db:String}"
            " AND table = 'spans' AND name = 'resource'",
            {"db": again._tables.database},
        )
        assert column == [(schema.RESOURCE_MAP,)]
        for table in versions.CODEC_TABLES:
            found = again._fetch(
                "SELECT name, compression_codec FROM system.columns"
                " WHERE database = 'threadline' AND table = {t:String} AND compression_codec != ''",
                {"t": table},
            )
            declared = versions.declared_codecs("threadline")[table]
            assert dict(found) == {column: f"CODEC({codec})" for column, codec in declared}
        assert [span.resource for span in again.get_trace("1" * 32)] == [resource] * len(spans)
        again.write(SpanBatch.from_records(_call("2" * 32, T0 + S))).result(timeout=30)
        assert again.service_map(DAY).edges[0].stats.calls == 2
    finally:
        again.close()


def _record_version(store: ClickHouseStore, version: int) -> None:
    """Make ``store`` say it is at schema ``version``, as a database that release wrote."""
    store._command(f"TRUNCATE TABLE {store._tables.versions}", {})
    versions = store._tables.versions
    store._command(f"INSERT INTO {versions} VALUES ({version}, 0, 'threadline {version}')", {})
