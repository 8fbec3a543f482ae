"""Synthetic journeys stay out of the fleet views users read, in the rollups and by scan,
and trace search lists them, badges them and filters by them.

Hand-built traffic with known answers: a shop whose checkout calls payments over HTTP
and hands a message to a fulfillment consumer. Real traffic and synthetic journeys
(``journey.synthetic=true``, a probe's or a drill's) go through the same edges; the
service map's edge figures and the slow/failed groups of tail-latency and error
analysis count the real traffic only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from support.times import MINUTE, MS, T0
from threadline.server.aggregates import EdgeKind, Split, Target, TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode, TraceQuery
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore

WINDOW: Final = TimeWindow(T0, T0 + 10 * MINUTE)
WAIT_S: Final = 30.0


def checkout(
    n: int, *, synthetic: bool = False, failed: bool = False, ms: int = 100
) -> list[SpanRecord]:
    """shop root → CLIENT → payments SERVER; shop PRODUCER → fulfillment CONSUMER."""
    trace = f"{n:032x}"
    start = T0 + 2 * MINUTE + n * 10 * MS
    marked = {"journey.synthetic": "true"} if synthetic else {}
    status = {"status": StatusCode.ERROR} if failed else {}
    return [
        span_record(trace, "a1", None, "shop", "POST /checkout", start, start + ms * MS,
                    attributes=marked, **status),
        span_record(trace, "a2", "a1", "shop", "POST /charge", start + MS, start + 9 * MS,
                    kind=SpanKind.CLIENT, attributes=marked),
        span_record(trace, "a3", "a2", "payments", "charge", start + 2 * MS, start + 8 * MS,
                    kind=SpanKind.SERVER, attributes=marked, **status),
        span_record(trace, "a4", "a1", "shop", "orders publish", start + 10 * MS,
                    start + 11 * MS, kind=SpanKind.PRODUCER, attributes=marked),
        span_record(trace, "a5", "a4", "fulfillment", "orders process", start + 15 * MS,
                    start + 20 * MS, kind=SpanKind.CONSUMER, attributes=marked),
    ]  # fmt: skip


def traffic(store: Store) -> None:
    """12 real checkouts (1 failed; 100-109 ms, the last 2 slow: 900 ms) and 5 synthetic ones, all
    failed and slower still (2 s): a drill's traffic during an outage."""
    spans: list[SpanRecord] = []
    for n in range(12):
        spans += checkout(n, failed=n == 0, ms=900 if n >= 10 else 100 + n)
    for n in range(12, 17):
        spans += checkout(n, synthetic=True, failed=True, ms=2000)
    store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)


@pytest.fixture(params=["rollups", "scan"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = DuckDBStore(tmp_path / "spans.duckdb", rollups=request.param == "rollups")
    try:
        traffic(store)
        yield store
    finally:
        store.close()


def test_the_map_edges_count_real_calls_only(fleet: Store) -> None:
    """Every edge, call and message hop, service and operation level, counts the 12 real
    calls and the 1 real failure; the 5 synthetic ones (all failed) are not there."""
    found = fleet.service_map(WINDOW)
    edges = {(e.caller, e.callee, e.kind): e.stats for e in found.edges}
    assert set(edges) == {
        ("shop", "payments", EdgeKind.CALL),
        ("shop", "fulfillment", EdgeKind.MESSAGE),
    }
    call = edges["shop", "payments", EdgeKind.CALL]
    assert (call.calls, call.errors) == (12, 1)
    message = edges["shop", "fulfillment", EdgeKind.MESSAGE]
    assert (message.calls, message.errors) == (12, 0)
    assert message.queue_dwell is not None
    assert {
        (e.caller_operation, e.callee_operation, e.stats.calls) for e in found.operation_edges
    } == {
        ("POST /charge", "charge", 12),
        ("orders publish", "orders process", 12),
    }
    assert {s.service: s.stats.requests for s in found.services} == {
        "shop": 12,
        "payments": 12,
        "fulfillment": 12,
    }


def test_a_window_of_synthetic_traffic_only_has_no_edges(tmp_path: Path) -> None:
    """When only a probe ran, the map has its services' names nowhere: no traffic."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        spans = [s for n in range(3) for s in checkout(n, synthetic=True)]
        store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        found = store.service_map(WINDOW)
        assert (found.services, found.edges, found.operation_edges) == ((), (), ())
    finally:
        store.close()


@pytest.mark.parametrize("rollups", [True, False], ids=["rollups", "scan"])
def test_a_marked_callee_stored_before_its_unmarked_caller_stays_out_of_the_map(
    tmp_path: Path, rollups: bool
) -> None:
    """A synthetic journey's callee spans arrive first (kept as orphans), then a batch
    whose spans carry no marker adopts them: the calls it completes are synthetic still,
    so the map counts the 2 real checkouts only, at the service and operation level."""
    store = DuckDBStore(tmp_path / "spans.duckdb", rollups=rollups)
    try:
        real = [s for n in range(2) for s in checkout(n)]
        probes = [s for n in range(2, 5) for s in checkout(n, synthetic=True)]
        callees = {"charge", "orders process"}
        first = [s for s in probes if s.name in callees]
        unmarked = [dataclasses.replace(s, attributes={}) for s in probes if s.name not in callees]
        for batch in (real, first, unmarked):
            store.write(SpanBatch.from_records(batch)).result(timeout=WAIT_S)
        found = store.service_map(WINDOW)
        assert {(e.caller, e.callee, e.stats.calls) for e in found.edges} == {
            ("shop", "payments", 2),
            ("shop", "fulfillment", 2),
        }
        assert {e.stats.calls for e in found.operation_edges} == {2}
    finally:
        store.close()


@pytest.mark.parametrize("target", [Target("shop"), Target("shop", "POST /checkout"), Target()])
def test_failed_group_and_its_baseline_hold_real_requests_only(
    fleet: Store, target: Target
) -> None:
    """The 5 failing synthetic checkouts are not the "errors" group: 1 failed real request
    against a baseline of 11."""
    groups = fleet.trace_groups(target, Split.FAILED, WINDOW)
    assert (groups.focus_traces, groups.baseline_traces) == (1, 11)
    assert groups.examples == (f"{0:032x}",)


@pytest.mark.parametrize("target", [Target("shop"), Target()])
def test_slow_group_threshold_comes_from_real_requests(fleet: Store, target: Target) -> None:
    """The p85 of the 12 real checkouts (100-109 ms, then 900 ms twice) splits off the two
    900 ms ones; counted with the synthetic 2 s requests it would be those five instead."""
    groups = fleet.trace_groups(target, Split.SLOW, WINDOW, percentile=85.0)
    assert (groups.focus_traces, groups.baseline_traces) == (2, 10)
    assert groups.threshold_ns is not None
    assert groups.threshold_ns < 1000 * MS
    assert set(groups.examples) == {f"{10:032x}", f"{11:032x}"}


@pytest.mark.parametrize(
    ("choice", "listed"),
    [("include", set(range(17))), ("exclude", set(range(12))), ("only", set(range(12, 17)))],
)
def test_search_lists_marks_and_filters_synthetic_traces(
    fleet: Store, choice: str, listed: set[int]
) -> None:
    """Every trace is listed by default, each with its mark; ``exclude`` and ``only``
    split the 12 users' traces from the 5 probes'."""
    found = fleet.search_traces(TraceQuery(limit=100, synthetic=choice))  # type: ignore[arg-type]
    assert {int(t.trace_id, 16) for t in found} == listed
    assert all(t.synthetic == (int(t.trace_id, 16) >= 12) for t in found)


def test_a_journey_marks_its_synthetic_traces(tmp_path: Path) -> None:
    """A session holding a user's trace and a probe's lists both, the probe's marked."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        spans = [
            dataclasses.replace(s, session_id="s1")
            for s in checkout(1) + checkout(2, synthetic=True)
        ]
        store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        steps = store.journey_traces(session_id="s1")
        assert [(int(t.trace_id, 16), t.synthetic) for t in steps] == [(1, False), (2, True)]
    finally:
        store.close()
