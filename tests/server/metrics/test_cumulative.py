"""Counters from rollups over a real DuckDB store and a controlled clock: sealing, origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.metrics.cumulative import SETTLE_MINUTES, CumulativeRollups
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
KEY: Final = ("web", "GET /pay")


def root(trace: str, start: int) -> list[SpanRecord]:
    return [span_record(trace, "a1", None, "web", "GET /pay", start, start + 100 * MS)]


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    yield opened
    opened.close()


def write(store: DuckDBStore, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=30)


def test_sealed_minutes_are_kept_and_late_spans_in_them_are_left_out(store: DuckDBStore) -> None:
    """Minutes past the settle time are summed once; later arrivals in them do not count."""
    clock = Clock(T0 + 30 * S)
    totals = CumulativeRollups(store.metric_rows, clock_ns=clock)
    write(store, root("t1", T0) + root("t2", T0 + S))
    assert totals.snapshot().operations[KEY].count == 2
    clock.now = T0 + (SETTLE_MINUTES + 2) * MINUTE  # minute T0 is sealed now
    assert totals.snapshot().operations[KEY].count == 2
    write(store, root("t3", T0 + 2 * S))  # late: into a sealed minute
    write(store, root("t4", clock.now - MINUTE))  # live
    snapshot = totals.snapshot()
    assert snapshot.operations[KEY].count == 3
    assert snapshot.operations[KEY].duration_sum_s == pytest.approx(0.3)


def test_counting_starts_a_settle_time_before_the_server(store: DuckDBStore) -> None:
    """Spans older than the origin are not in the counters; recent ones are."""
    write(store, root("old", T0 - (SETTLE_MINUTES + 5) * MINUTE) + root("new", T0 - 2 * MINUTE))
    totals = CumulativeRollups(store.metric_rows, clock_ns=Clock(T0))
    snapshot = totals.snapshot()
    assert snapshot.operations[KEY].count == 1
    assert snapshot.origin_minute == T0 // MINUTE - SETTLE_MINUTES
