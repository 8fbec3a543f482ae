"""Rollups against the full scan: random workloads, the same answers.

Hypothesis builds traces (entry spans, CLIENT→SERVER calls, PRODUCER→CONSUMER hops,
SERVER spans under another service's span with no CLIENT span (inferred edges), the
SDK's own telemetry spans, failures, clock spread over a few minutes), writes them
in random batches in random order with some batches re-sent, deletes some traces,
and then every fleet view read from the rollups must match the scan of the stored
spans: counts exactly, percentiles within the sketch's error. Fresh deltas and
folded rows must answer alike, so each example is checked before and after
compaction, and a store opened on old spans (no rollup tables yet) must backfill to
the same answers.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Final

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import (
    EdgeKind,
    OperationRed,
    Percentiles,
    RedStats,
    ServiceMap,
    TimeWindow,
)
from threadline.server.analysis import sketch
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore, rollups
from threadline.server.storage.duckdb.migrations import stored_version

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE  # a whole minute in 2023
WINDOW: Final = TimeWindow(T0 - MINUTE, T0 + 10 * MINUTE)
SERVICES: Final = ("web", "cart", "pay", "mail")


def trace_spans(rng: random.Random, index: int) -> list[SpanRecord]:
    """One trace: a web root calling 0–3 services, some by a queue hop, some failing."""
    trace = f"{index + 1:032x}"
    start = T0 + rng.randrange(8 * MINUTE)
    duration = rng.randrange(1, 2_000) * MS
    spans = [
        span_record(
            trace, "r", None, "web", rng.choice(["GET /", "POST /buy"]), start, start + duration
        )
    ]
    for n in range(rng.randrange(4)):
        callee = rng.choice(SERVICES[1:])
        queue = rng.random() < 0.3
        at = start + rng.randrange(duration)
        took = rng.randrange(0, 500) * MS
        caller_id, callee_id = f"c{n}", f"s{n}"
        spans.append(
            span_record(
                trace,
                caller_id,
                "r",
                "web",
                f"call {callee}",
                at,
                at + (MS if queue else took + MS),
                kind=SpanKind.PRODUCER if queue else SpanKind.CLIENT,
            )
        )
        # Some calls have no CLIENT span (an uninstrumented client): the server's
        # parent is the root, an inferred edge when the services differ.
        inferred = not queue and rng.random() < 0.3
        if inferred:
            spans.pop()
            callee = rng.choice(SERVICES)  # "web" too: a same-service child, no edge
        begin = at + (rng.randrange(1, 90_000) * MS if queue else 0)
        status = StatusCode.ERROR if rng.random() < 0.2 else StatusCode.UNSET
        spans.append(
            span_record(
                trace,
                callee_id,
                "r" if inferred else caller_id,
                callee,
                rng.choice(["do", "undo"]),
                begin,
                begin + took,
                kind=SpanKind.CONSUMER if queue else SpanKind.SERVER,
                status=status,
            )
        )
    if rng.random() < 0.1:  # the SDK's report about itself: in no fleet view
        spans.append(
            span_record(f"{index + 1:031x}f", "st", None, "web", SDK_STATS_SPAN, start, start + MS)
        )
    return spans


def close_enough(rollup: Percentiles | None, scan: Percentiles | None) -> bool:
    if rollup is None or scan is None:
        return rollup is scan
    return all(
        abs(a - b) <= sketch.ALPHA * b + 1e-6
        for a, b in zip(
            (rollup.p50, rollup.p90, rollup.p95, rollup.p99),
            (scan.p50, scan.p90, scan.p95, scan.p99),
            strict=True,
        )
    )


def same_stats(rollup: RedStats, scan: RedStats) -> None:
    assert (rollup.requests, rollup.errors) == (scan.requests, scan.errors)
    assert close_enough(rollup.latency, scan.latency), (rollup.latency, scan.latency)


def same_operations(rollup: list[OperationRed], scan: list[OperationRed]) -> None:
    assert [(r.service, r.operation) for r in rollup] == [(r.service, r.operation) for r in scan]
    for a, b in zip(rollup, scan, strict=True):
        same_stats(a.stats, b.stats)


def same_map(rollup: ServiceMap, scan: ServiceMap) -> None:
    same_operations(list(rollup.services), list(scan.services))
    assert [(e.caller, e.callee, e.kind) for e in rollup.edges] == [
        (e.caller, e.callee, e.kind) for e in scan.edges
    ]
    pairs = list(zip(rollup.edges, scan.edges, strict=True)) + list(
        zip(rollup.operation_edges, scan.operation_edges, strict=True)
    )
    assert len(rollup.operation_edges) == len(scan.operation_edges)
    for a, b in pairs:
        assert (a.stats.calls, a.stats.errors) == (b.stats.calls, b.stats.errors)
        assert close_enough(a.stats.latency, b.stats.latency)
        assert close_enough(a.stats.queue_dwell, b.stats.queue_dwell)


def check(store: DuckDBStore, windows: list[TimeWindow]) -> None:
    for window in windows:
        same_operations(store.operation_red(window), store.scan.operation_red(window))
        same_map(store.service_map(window), store.scan.service_map(window))
    for service in SERVICES:
        for bucket in (MINUTE, 3 * MINUTE):
            first = (T0 - 3 * MINUTE) // bucket * bucket  # on a bucket boundary
            window = TimeWindow(first, first + 12 * MINUTE)
            rollup = store.service_red(service, window, bucket_ns=bucket)
            scan = store.scan.service_red(service, window, bucket_ns=bucket)
            same_stats(rollup.totals, scan.totals)
            assert len(rollup.buckets) == len(scan.buckets)
            for a, b in zip(rollup.buckets, scan.buckets, strict=True):
                assert a.start_ns == b.start_ns
                same_stats(a.stats, b.stats)


WINDOWS: Final = [WINDOW, TimeWindow(T0 + 2 * MINUTE, T0 + 5 * MINUTE)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    traces=st.integers(min_value=1, max_value=30),
    batches=st.integers(min_value=1, max_value=6),
    resend=st.booleans(),
    deleted=st.integers(min_value=0, max_value=5),
)
def test_rollups_answer_like_the_full_scan(
    seed: int, traces: int, batches: int, resend: bool, deleted: int
) -> None:
    """Random traces in random batches and order, re-sent and deleted: rollups == scan."""
    rng = random.Random(seed)
    spans = [span for index in range(traces) for span in trace_spans(rng, index)]
    rng.shuffle(spans)  # children before parents, minutes out of order
    cuts = sorted(rng.sample(range(1, len(spans)), min(batches - 1, len(spans) - 1)))
    parts = [spans[a:b] for a, b in zip([0, *cuts], [*cuts, len(spans)], strict=True)]
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "spans.duckdb")
        try:
            for part in parts:
                store.write(SpanBatch.from_records(part)).result(timeout=30)
            if resend:
                store.write(SpanBatch.from_records(rng.choice(parts))).result(timeout=30)
            doomed = rng.sample(sorted({s.trace_id for s in spans}), min(deleted, traces - 1))
            store.delete_traces(doomed)
            assert store.operation_red(WINDOW), "the workload reached the store"
            check(store, WINDOWS)
            store.compact_rollups()
            check(store, WINDOWS)
        finally:
            store.close()


def test_a_store_written_without_rollups_backfills_them_on_open(tmp_path: Path) -> None:
    """Opening spans stored before rollups existed (schema version 2) builds rollups that
    answer like a scan."""
    rng = random.Random(7)
    spans = [span for index in range(60) for span in trace_spans(rng, index)]
    path = tmp_path / "old.duckdb"
    old = DuckDBStore(path, rollups=False)
    try:
        old.write(SpanBatch.from_records(spans)).result(timeout=30)
    finally:
        old.close()
    # What version 2 had: the spans and the version table, no rollup tables.
    with duckdb.connect(str(path)) as connection:
        for table in (
            "rollup_operations",
            "rollup_edges",
            "rollup_names",
            "rollup_services",
            *("rollup_retries", "rollup_synthetic", "rollup_synthetic_edges", "alert_states"),
        ):
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DELETE FROM threadline_schema WHERE version > 2")
        connection.execute("INSERT INTO threadline_schema VALUES (2, NULL, 'test')")
        assert stored_version(connection) == 2
    store = DuckDBStore(path)
    try:
        assert store.operation_red(WINDOW), "the backfill counted the stored spans"
        assert any(e.kind is EdgeKind.INFERRED for e in store.service_map(WINDOW).edges)
        check(store, WINDOWS)
    finally:
        store.close()


@pytest.mark.parametrize("rollups", [True, False])
def test_without_rollups_the_store_answers_by_scan(tmp_path: Path, rollups: bool) -> None:
    """The baseline store the benchmark compares against answers the same questions."""
    rng = random.Random(3)
    store = DuckDBStore(tmp_path / "s.duckdb", rollups=rollups)
    try:
        store.write(SpanBatch.from_records(trace_spans(rng, 0))).result(timeout=30)
        same_operations(store.operation_red(WINDOW), store.scan.operation_red(WINDOW))
    finally:
        store.close()


def test_a_flood_of_operation_names_is_capped_with_an_other_bucket(tmp_path: Path) -> None:
    """Past the cap, a service's new operation names count under "(other)", nothing lost."""
    flood = rollups.OPERATION_CAP + 20
    spans = [
        span_record(f"{n + 1:032x}", "r", None, "web", f"GET /item/{n:04d}", T0 + n, T0 + n + MS)
        for n in range(flood)
    ]
    spans.append(span_record("f" * 32, "r", None, "cart", "add", T0, T0 + MS))
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        later = span_record("e" * 32, "r", None, "web", "GET /item/0000", T0, T0 + MS)
        store.write(SpanBatch.from_records([later])).result(timeout=30)
        red = {(r.service, r.operation): r.stats.requests for r in store.operation_red(WINDOW)}
    finally:
        store.close()
    web = {operation: n for (service, operation), n in red.items() if service == "web"}
    assert len(web) == rollups.OPERATION_CAP + 1
    assert web[rollups.OTHER] == 20
    assert web["GET /item/0000"] == 2  # a kept name still counts after the cap is reached
    assert sum(web.values()) == flood + 1
    assert red[("cart", "add")] == 1  # the cap is per service
