"""DuckDB and ClickHouse (chDB) keep the same rollups: one workload, the same answers.

A seeded workload of a few hundred spans (calls, queue hops, inferred edges, failures,
synthetic journeys, the SDK's own reports, a flood of operation names past the cap,
sides of calls arriving in a later batch, a re-sent batch) is written to both stores
in the same batches, then both delete the same traces and apply the same retention.
RED, the service map, ``/metrics`` rows and the capped services must agree: counts
exactly, percentiles within the sketch's promised error.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.conventions import JOURNEY_SYNTHETIC
from threadline.server.aggregates import EdgeKind, Percentiles, RedStats, ServiceMap, TimeWindow
from threadline.server.analysis import sketch
from threadline.server.batch import SpanBatch
from threadline.server.metric_rows import OperationSlot
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE  # a whole minute in 2023
WINDOW: Final = TimeWindow(T0 - MINUTE, T0 + 12 * MINUTE)
SERVICES: Final = ("web", "cart", "pay", "mail")
WAIT_S: Final = 60.0
# Names of one service past the stores' cap (500), spread over the batches.
FLOOD: Final = 520


def _trace(rng: random.Random, index: int) -> list[SpanRecord]:
    """A web root calling 0–3 services by call, queue hop or an uninstrumented client."""
    trace = f"{index + 1:032x}"
    start = T0 + rng.randrange(8 * MINUTE)
    took = rng.randrange(1, 2_000) * MS
    synthetic = {JOURNEY_SYNTHETIC: True} if rng.random() < 0.1 else {}
    root = rng.choice(["GET /", "POST /buy"])
    spans = [span_record(trace, "r", None, "web", root, start, start + took, attributes=synthetic)]
    for n in range(rng.randrange(4)):
        callee = rng.choice(SERVICES[1:])
        queue = rng.random() < 0.3
        at = start + rng.randrange(took)
        length = rng.randrange(0, 500) * MS
        parent = "r"
        if queue or rng.random() < 0.7:
            kind = SpanKind.PRODUCER if queue else SpanKind.CLIENT
            end = at + (MS if queue else length + MS)
            spans.append(span_record(trace, f"c{n}", "r", "web", f"call {callee}", at, end,
                                     kind=kind))  # fmt: skip
            parent = f"c{n}"
        else:  # no CLIENT span: an inferred edge (none when the callee is web itself)
            callee = rng.choice(SERVICES)
        begin = at + (rng.randrange(1, 90_000) * MS if queue else 0)
        failed = {"status": StatusCode.ERROR} if rng.random() < 0.2 else {}
        spans.append(
            span_record(trace, f"s{n}", parent, callee, rng.choice(["do", "undo"]), begin,
                        begin + length, kind=SpanKind.CONSUMER if queue else SpanKind.SERVER,
                        attributes=synthetic, **failed)
        )  # fmt: skip
    return spans


def _workload(seed: int) -> list[list[SpanRecord]]:
    """Batches to write in order: some spans held back to a later batch, one re-sent."""
    rng = random.Random(seed)
    spans = [span for index in range(90) for span in _trace(rng, index)]
    spans += [
        span_record(f"f{n:031x}", "a1", None, "catalog", f"GET /item/{n:04d}",
                    T0 + rng.randrange(8 * MINUTE), T0 + 9 * MINUTE)
        for n in range(FLOOD)
    ]  # fmt: skip
    spans.append(
        span_record("e" * 32, "st", None, "web", "threadline.sdk.stats", T0, T0,
                    kind=SpanKind.INTERNAL, attributes={"threadline.sdk.spans.exported": 3})
    )  # fmt: skip
    rng.shuffle(spans)
    held = [span for span in spans if rng.random() < 0.15]
    kept = [span for span in spans if span not in held]
    batches = [kept[i : i + 97] for i in range(0, len(kept), 97)]
    batches.append(held)
    batches.insert(3, batches[1])  # re-sent
    return batches


def _write(store: Store, batches: list[list[SpanRecord]]) -> None:
    for batch in batches:
        store.write(SpanBatch.from_records(batch)).result(timeout=WAIT_S)


def _near(a: Percentiles | None, b: Percentiles | None) -> None:
    if a is None or b is None:
        assert a is b
        return
    for x, y in zip((a.p50, a.p90, a.p95, a.p99), (b.p50, b.p90, b.p95, b.p99), strict=True):
        assert x == pytest.approx(y, rel=sketch.PROMISED_ERROR, abs=1e-6)


def _same(a: RedStats, b: RedStats) -> None:
    assert (a.requests, a.errors) == (b.requests, b.errors)
    _near(a.latency, b.latency)


def _same_map(a: ServiceMap, b: ServiceMap) -> None:
    assert [s.service for s in a.services] == [s.service for s in b.services]
    for x, y in zip(a.services, b.services, strict=True):
        _same(x.stats, y.stats)
    keys = [(e.caller, e.callee, e.kind) for e in a.edges]
    assert keys == [(e.caller, e.callee, e.kind) for e in b.edges]
    op_keys = [(e.caller, e.caller_operation, e.callee, e.callee_operation, e.kind)
               for e in a.operation_edges]  # fmt: skip
    assert op_keys == [
        (e.caller, e.caller_operation, e.callee, e.callee_operation, e.kind)
        for e in b.operation_edges
    ]
    stats = [(x.stats, y.stats) for x, y in zip(a.edges, b.edges, strict=True)]
    stats += [(x.stats, y.stats) for x, y in zip(a.operation_edges, b.operation_edges, strict=True)]
    for one, other in stats:
        assert (one.calls, one.errors) == (other.calls, other.errors)
        _near(one.latency, other.latency)
        _near(one.queue_dwell, other.queue_dwell)


def _slot(row: OperationSlot) -> tuple[str, str, int]:
    return (row.service, row.operation, row.slot)


def _agree(duck: Store, click: Store) -> None:
    red_duck, red_click = duck.operation_red(WINDOW), click.operation_red(WINDOW)
    assert [(r.service, r.operation) for r in red_click] == [
        (r.service, r.operation) for r in red_duck
    ]
    for x, y in zip(red_click, red_duck, strict=True):
        _same(x.stats, y.stats)
    series = [s.service_red("web", WINDOW, bucket_ns=MINUTE) for s in (duck, click)]
    assert [b.stats.requests for b in series[0].buckets] == [
        b.stats.requests for b in series[1].buckets
    ]
    _same(series[0].totals, series[1].totals)
    # Each store finds a slot's percentiles from its buckets' ranks in SQL; the slot's
    # window read alone merges the same buckets in Python: exactly the same figures.
    for store, found in zip((duck, click), series, strict=True):
        assert any(b.stats.requests for b in found.buckets), "the series reached the workload"
        for b in found.buckets:
            alone = store.service_red("web", TimeWindow(b.start_ns, b.start_ns + MINUTE))
            assert b.stats == alone.totals
    _same_map(click.service_map(WINDOW), duck.service_map(WINDOW))
    first, last = WINDOW.start_ns // MINUTE, WINDOW.end_ns // MINUTE
    rows_duck, rows_click = duck.metric_rows(first, last), click.metric_rows(first, last)
    assert sorted(rows_click.operations, key=_slot) == sorted(rows_duck.operations, key=_slot)
    edge_key = [(e.caller, e.callee, e.kind, e.slot, e.calls, e.errors) for e in rows_click.edges]
    assert sorted(edge_key) == sorted(
        (e.caller, e.callee, e.kind, e.slot, e.calls, e.errors) for e in rows_duck.edges
    )
    assert sum(e.duration_sum_ns for e in rows_click.edges) == pytest.approx(
        sum(e.duration_sum_ns for e in rows_duck.edges), rel=1e-9
    )
    assert click.capped_services() == duck.capped_services()


@pytest.mark.parametrize("seed", [7, 2026])
def test_duckdb_and_clickhouse_rollups_agree(tmp_path: Path, seed: int) -> None:
    """The same batches, deletions and retention give the same fleet answers on both."""
    batches = _workload(seed)
    duck = DuckDBStore(tmp_path / "spans.duckdb")
    click = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    try:
        _write(duck, batches)
        _write(click, batches)
        assert click.counts().spans == duck.counts().spans
        assert [c.service for c in click.capped_services()] == ["catalog"]
        found = click.service_map(WINDOW)
        assert {e.kind for e in found.edges} == {EdgeKind.CALL, EdgeKind.MESSAGE, EdgeKind.INFERRED}
        _agree(duck, click)
        doomed = [f"{n + 1:032x}" for n in range(0, 90, 9)]
        assert click.delete_traces(doomed) == duck.delete_traces(doomed) > 0
        cutoff = T0 + 2 * MINUTE + 17 * 1000 * MS  # within a minute
        assert click.delete_older_than(cutoff) == duck.delete_older_than(cutoff) > 0
        _agree(duck, click)
    finally:
        click.close()
        duck.close()
