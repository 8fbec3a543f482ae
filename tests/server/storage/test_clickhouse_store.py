"""What only the ClickHouse store has: its schema version, reopening, its errors, its
lookup table, and the methods it does not offer yet (on chDB, the engine in process)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.storage.base import Store, StoreError
from threadline.server.storage.clickhouse import schema
from threadline.server.storage.clickhouse.store import NOT_YET, ClickHouseStore
from threadline.store_url import StoreUrl, parse

S: Final = 1_000_000_000
T0: Final = 1_700_000_000 * S
SECRET: Final = "hunter2-s3cret"


@pytest.fixture
def url(tmp_path: Path) -> StoreUrl:
    return StoreUrl(backend="chdb", path=tmp_path / "chdb")


@pytest.fixture
def store(url: StoreUrl) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(url)
    yield opened
    opened.close()


def _spans(trace: str, count: int, start_ns: int) -> SpanBatch:
    return SpanBatch.from_records(
        span_record(trace, f"{n + 1:016x}", None, "svc", "op", start_ns + n, start_ns + n + 10)
        for n in range(count)
    )


def test_spans_are_kept_across_reopening(url: StoreUrl) -> None:
    """Spans written, the store closed and opened again: all are read back."""
    first = ClickHouseStore(url)
    first.write(_spans("a" * 32, 3, T0)).result(timeout=30)
    first.close()

    again = ClickHouseStore(url)
    try:
        assert len(again.get_trace("a" * 32)) == 3
        assert again.schema_version == schema.SCHEMA_VERSION
    finally:
        again.close()


def test_a_database_from_a_newer_release_is_refused(url: StoreUrl) -> None:
    """A schema version above this release's makes opening fail, saying to upgrade."""
    store = ClickHouseStore(url)
    store._connection.command(  # what a newer release would have recorded
        f"INSERT INTO {store._tables.versions} VALUES (99, 0, 'future')", doing="test"
    )
    store.close()

    with pytest.raises(StoreError, match=r"schema version 99.*upgrade threadline"):
        ClickHouseStore(url)


def test_the_lookup_table_holds_each_trace_time_range(store: ClickHouseStore) -> None:
    """The materialized view keeps trace id → (first start, last end) per insert."""
    store.write(_spans("b" * 32, 4, T0)).result(timeout=30)
    store.write(_spans("b" * 32, 1, T0 + 86_400 * S)).result(timeout=30)  # the next day

    rows = store._fetch(
        f"SELECT min(start_ns), max(end_ns) FROM {store._tables.trace_ts}"
        " WHERE trace_id = {t:String}",
        {"t": "b" * 32},
    )
    assert rows == [(T0, T0 + 86_400 * S + 10)]
    assert len(store.get_trace("b" * 32)) == 5  # across two day partitions


def test_erasure_leaves_no_masked_rows(store: ClickHouseStore) -> None:
    """After erase_user, the parts hold only the live rows (the delete was merged away)."""
    records = [
        span_record("c" * 32, "0000000000000001", None, "web", "GET /", T0, T0 + 5, user_id="u9"),
        span_record("d" * 32, "0000000000000002", None, "web", "GET /", T0, T0 + 5),
    ]
    store.write(SpanBatch.from_records(records)).result(timeout=30)

    erased = store.erase_user(["u9"])

    assert erased.erased_spans == 1
    assert erased.spans_per_form == (("u9", 1),)
    rows = store._fetch(
        "SELECT sum(rows) FROM system.parts WHERE active AND database = {db:String}"
        " AND table = 'spans'",
        {"db": store._connection.database},
    )
    assert rows == [(1,)]


def test_every_store_method_is_built_on_clickhouse() -> None:
    """The ClickHouse store answers the whole contract: no method is left out or listed
    as not built (the contract suite then runs every test on chDB)."""
    wanted = {name for name, value in vars(Store).items() if callable(value) and name[0] != "_"}
    assert "journey_map" in wanted
    assert "slo_series" in wanted
    assert sorted(name for name in wanted if not hasattr(ClickHouseStore, name)) == []
    assert NOT_YET == ()


def test_unreachable_server_error_never_shows_the_password() -> None:
    """Opening a clickhouse:// store that refuses connections fails without the password."""
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = parse(f"clickhouse://ingest:{SECRET}@127.0.0.1:{port}/traces")

    with pytest.raises(StoreError) as raised:
        ClickHouseStore(url)

    assert SECRET not in str(raised.value)
    # The driver's exception is not chained: a traceback cannot print it either.
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert "clickhouse://ingest:***@127.0.0.1" in str(raised.value)
