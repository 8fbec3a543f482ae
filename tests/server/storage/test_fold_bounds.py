"""A fold replaces what it kept of the traces it folds (their summary rows, the copies
kept apart, journey steps, the sessions' summaries) by deletes bounded to where the
folded traces start (``summaries.folded_span``): a trace that receives spans long
after its first fold, all of them later than its first spans, still leaves exactly one
of each behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.kept_apart import MINUTE, MS, T0, S, write
from support.spans import span_record
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore, writer
from threadline.server.storage.duckdb.schema import (
    FAILED_SPANS,
    JOURNEY_STEPS,
    JOURNEY_SUMMARIES,
    SLOW_SPANS,
    TRACE_SUMMARIES,
)

TRACES: Final = 300
# The trace that receives late spans: slow (its root is in its operation's tail), so
# it is copied among the slow traces, and failing once its late spans arrive.
LATE: Final = 10


def trace_id(index: int) -> str:
    return f"{index:032x}"


def request(index: int) -> list[SpanRecord]:
    """web GET /pay (root) → payments charge, one trace every six seconds, each of a
    session of its own: every tenth root takes 300 ms, the others 10 to 34 ms."""
    start = T0 + index * 6 * S
    took = 300 * MS if index % 10 == 0 else (10 + index % 25) * MS
    session = {"session_id": f"s-{index}"}
    return [
        span_record(trace_id(index), "a1", None, "web", "GET /pay", start, start + took, **session),
        span_record(
            trace_id(index),
            "a2",
            "a1",
            "payments",
            "charge",
            start + MS,
            start + took - MS,
            kind=SpanKind.SERVER,
            **session,
        ),
    ]


def late_spans() -> list[SpanRecord]:
    """Two spans of trace ``LATE`` starting 20 and 25 minutes after it did, one failing:
    each starts after every span its earlier fold kept."""
    start = T0 + LATE * 6 * S
    return [
        span_record(
            trace_id(LATE),
            span_id,
            "a1",
            "payments",
            "refund",
            start + minutes * MINUTE,
            start + minutes * MINUTE + 5 * MS,
            kind=SpanKind.SERVER,
            session_id=f"s-{LATE}",
            **({"status": StatusCode.ERROR} if failed else {}),
        )
        for span_id, minutes, failed in (("b1", 20, True), ("b2", 25, False))
    ]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBStore]:
    """A store that folds only when told (``compact_rollups``)."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        yield opened
    finally:
        opened.close()


def rows_of(store: DuckDBStore, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store._fetch(sql, [trace_id(LATE)])]


def test_late_spans_after_a_fold_leave_one_of_everything_kept_of_their_trace(
    store: DuckDBStore,
) -> None:
    for first in range(0, TRACES, 50):
        write(store, [span for index in range(first, first + 50) for span in request(index)])
    store.compact_rollups()
    assert rows_of(store, f"SELECT count(*) FROM {SLOW_SPANS} WHERE trace_id = ?") == [(2,)], (
        "the slow trace is copied at its first fold"
    )

    # Its late spans arrive with traces near the end of the window, folded together.
    write(store, [*late_spans(), *request(TRACES), *request(TRACES + 1)])
    store.compact_rollups()

    assert rows_of(
        store, f"SELECT spans, errors, fresh FROM {TRACE_SUMMARIES} WHERE trace_id = ?"
    ) == [(4, 1, False)], "one folded summary row holds all four spans"
    for table in (FAILED_SPANS, SLOW_SPANS):
        kept = rows_of(
            store, f"SELECT count(*), count(DISTINCT span_id) FROM {table} WHERE trace_id = ?"
        )
        assert kept == [(4, 4)], f"{table} holds each of the trace's spans once"
    assert rows_of(
        store, f"SELECT failed, end_ns - start_ns FROM {JOURNEY_STEPS} WHERE trace_id = ?"
    ) == [(True, 25 * MINUTE + 5 * MS)], "one journey step, the trace as it is now"
    sessions = store._fetch(
        f"SELECT traces, spans, errors FROM {JOURNEY_SUMMARIES} WHERE session_id = ?",
        [f"s-{LATE}"],
    )
    assert [tuple(row) for row in sessions] == [(1, 4, 1)]
    # The other traces are kept once each too.
    assert store._fetch(
        f"SELECT count(*), count(DISTINCT trace_id) FROM {TRACE_SUMMARIES}", []
    ) == [(TRACES + 2, TRACES + 2)]
