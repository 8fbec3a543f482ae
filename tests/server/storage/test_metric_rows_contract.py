"""The ``Store`` contract for ``/metrics``: rollups summed by latency slot, and exemplars.

Slots are the spans between ``/metrics`` histogram bounds; exemplars are one stored
trace per minute × service × operation × slot, a failing one first, gone with their
trace.
"""

from __future__ import annotations

from typing import Final

import pytest

from support.spans import span_record
from threadline.server.analysis import latency_bounds
from threadline.server.batch import SpanBatch
from threadline.server.metric_rows import EdgeSlot, OperationSlot
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.base import Store

pytestmark = pytest.mark.store_methods("metric_rows", "exemplars")

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
M0: Final = T0 // MINUTE
WAIT_S: Final = 30.0
# 0.05 s < 80 ms <= 0.1 s and 0.1 s <= 200 ms: slots of the 0.1 and 0.25 bounds.
SLOT_100MS: Final = latency_bounds.BOUNDS_S.index(0.1)
SLOT_250MS: Final = latency_bounds.BOUNDS_S.index(0.25)


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def call(trace: str, at_ms: int, *, root_ms: int = 100, failed: bool = False) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT POST /charge → payments SERVER charge (80 ms)."""
    start = T0 + at_ms * MS
    status = {"status": StatusCode.ERROR} if failed else {}
    return [
        span_record(trace, "a1", None, "web", "GET /pay", start, start + root_ms * MS),
        span_record(trace, "a2", "a1", "web", "POST /charge", start + MS, start + 90 * MS,
                    kind=SpanKind.CLIENT),
        span_record(trace, "a3", "a2", "payments", "charge", start + 2 * MS, start + 82 * MS,
                    kind=SpanKind.SERVER, **status),
    ]  # fmt: skip


def test_rows_are_summed_per_latency_slot(store: Store) -> None:
    """Requests, errors and duration sums land in the slot of their bound, edges too."""
    batch = (
        call("t1", 0) + call("t2", 10) + call("t3", 20, failed=True) + call("t4", 30, root_ms=200)
    )
    write(store, batch)
    write(store, batch)  # re-sent: counted once
    rows = store.metric_rows(M0, M0 + 1)
    assert sorted(rows.operations, key=lambda r: (r.service, r.slot)) == [
        OperationSlot("payments", "charge", SLOT_100MS, 4, 1, 4 * 80 * MS),
        OperationSlot("web", "GET /pay", SLOT_100MS, 3, 0, 3 * 100 * MS),
        OperationSlot("web", "GET /pay", SLOT_250MS, 1, 0, 200 * MS),
    ]
    (edge,) = rows.edges
    assert (edge.caller, edge.callee, edge.kind, edge.slot, edge.calls, edge.errors) == (
        "web", "payments", "call", SLOT_100MS, 4, 1,
    )  # fmt: skip
    assert abs(edge.duration_sum_ns - 4 * 80 * MS) <= 0.01 * 4 * 80 * MS
    assert store.metric_rows(M0 + 1, M0 + 2).operations == ()
    assert isinstance(edge, EdgeSlot)


def test_exemplars_prefer_failing_traces_and_name_stored_traces(store: Store) -> None:
    """One example per key: the failing trace for payments, the slow root for web."""
    write(store, call("t1", 0) + call("t3", 20, failed=True) + call("t4", 30, root_ms=200))
    write(store, call("t5", 40, failed=True))  # a later commit: the key already has one
    found = {(e.service, e.slot): e for e in store.exemplars(M0, M0 + 1)}
    assert found[("payments", SLOT_100MS)].trace_id == "t3"
    assert found[("payments", SLOT_100MS)].duration_ns == 80 * MS
    assert found[("web", SLOT_250MS)].trace_id == "t4"
    assert found[("web", SLOT_250MS)].start_ns == T0 + 30 * MS
    for example in found.values():
        assert store.get_trace(example.trace_id)


def test_exemplars_go_with_their_traces(store: Store) -> None:
    """Deleting a trace (tail sampling, erasure) or retention removes its examples."""
    write(store, call("t1", 0) + call("t3", 20, failed=True))
    store.delete_traces(["t3"])
    left = store.exemplars(M0, M0 + 1)
    assert "t3" not in {e.trace_id for e in left}
    assert all(store.get_trace(e.trace_id) for e in left)
    store.delete_older_than(T0 + MINUTE)
    assert store.exemplars(M0, M0 + 1) == []
