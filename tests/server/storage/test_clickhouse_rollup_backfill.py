"""A ClickHouse store written before the rollup tables existed builds them on open.

The store is filled, its rollup tables and views dropped (the shape of a database
from before them), and reopening it must count every stored span into new tables:
the SLO reads, propagation health and trace groups answer as they did, and spans
written after the reopening are counted once more, not twice.
"""

from __future__ import annotations

from pathlib import Path

from support.rollup_workload import NOW, TRACES, WINDOW, WINDOWS, batches, slo_answers
from threadline.server.aggregates import Split, Target
from threadline.server.batch import SpanBatch
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.clickhouse import rollup_tables
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.slos import Indicator
from threadline.store_url import StoreUrl

VIEWS = (rollup_tables.REQUEST_ROLLUP_MV, rollup_tables.TRACE_ROLLUP_MV)


def _answers(store: ClickHouseStore) -> tuple[object, ...]:
    groups = store.trace_groups(Target("web"), Split.SLOW, WINDOW, sample=TRACES * 2)
    return (slo_answers(store), store.propagation(WINDOW), groups)


def test_reopening_a_store_without_rollup_tables_builds_them(tmp_path: Path) -> None:
    url = StoreUrl(backend="chdb", path=tmp_path / "chdb")
    written = batches()
    store = ClickHouseStore(url)
    try:
        for batch in written[:-1]:
            store.write(SpanBatch.from_records(batch)).result(timeout=60)
        expected = _answers(store)
        for name in (*VIEWS, *rollup_tables.DATA_TABLES):
            store._command(f"DROP TABLE threadline.{name}", {})
    finally:
        store.close()
    reopened = ClickHouseStore(url)
    try:
        assert _answers(reopened) == expected
        errors = IndicatorQuery(Indicator.ERRORS, "pay")
        before = reopened.slo_counts(errors, NOW, WINDOWS)[-1].total
        reopened.write(SpanBatch.from_records(written[-1])).result(timeout=60)
        added = sum(
            1
            for span in written[-1]
            if span.service_name == "pay"
            and span.kind.value == "server"
            and "journey.synthetic" not in span.attributes
        )
        assert reopened.slo_counts(errors, NOW, WINDOWS)[-1].total == before + added
    finally:
        reopened.close()
