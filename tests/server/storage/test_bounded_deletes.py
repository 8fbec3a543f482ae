"""Deletes bounded to where their traces start, so zone maps skip the rest of each
table: a fold replaces what it kept of the traces it folds (their summary rows, the
copies kept apart, journey steps, the sessions' summaries) within the folded traces'
range (``summaries.folded_span``), and a delete of whole traces (tail sampling) reads
the range of their summaries (``summaries.traces_span``). A trace that receives spans
long after its first fold, all later than its first spans, leaves exactly one of each
behind at the next fold, and nothing once deleted; an SDK report among a trace's spans,
which its summary leaves out, is deleted with it."""

from __future__ import annotations

from typing import Final

import pytest

from support.kept_apart import MINUTE, MS, T0, S, tail_request, write
from support.spans import span_record
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.schema import (
    FAILED_SPANS,
    JOURNEY_STEPS,
    JOURNEY_SUMMARIES,
    SLOW_SPANS,
    TABLE,
    TRACE_SUMMARIES,
)
from threadline.server.storage.duckdb.sql import SDK_STATS_SPAN

TRACES: Final = 300
# The trace that receives late spans: slow (its root is in its operation's tail), so
# it is copied among the slow traces, and failing once its late spans arrive.
LATE: Final = 10


def trace_id(index: int) -> str:
    return f"{index:032x}"


def request(index: int) -> list[SpanRecord]:
    """The ``index``-th request of the hour (``tail_request``), each of a session of its
    own: every tenth root slow."""
    return tail_request(trace_id(index), index, session_id=f"s-{index}")


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
def store(duckdb_folding_when_told: DuckDBStore) -> DuckDBStore:
    return duckdb_folding_when_told


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


def kept_of(store: DuckDBStore, trace: str) -> dict[str, int]:
    """How many rows each table keeps of ``trace``."""
    return {
        table: int(store._fetch(f"SELECT count(*) FROM {table} WHERE trace_id = ?", [trace])[0][0])
        for table in (TABLE, TRACE_SUMMARIES, FAILED_SPANS, SLOW_SPANS, JOURNEY_STEPS)
    }


def hour_with_late_spans(store: DuckDBStore) -> None:
    """The hour of requests, folded; then trace ``LATE``'s late spans with two more
    traces, left unfolded: its rows are one folded and one fresh."""
    for first in range(0, TRACES, 50):
        write(store, [span for index in range(first, first + 50) for span in request(index)])
    store.compact_rollups()
    write(store, [*late_spans(), *request(TRACES), *request(TRACES + 1)])


def test_deleting_a_trace_by_its_summaries_range_leaves_nothing_of_it(
    store: DuckDBStore,
) -> None:
    hour_with_late_spans(store)
    late, kept = trace_id(LATE), trace_id(LATE + 1)
    assert kept_of(store, late) == {
        TABLE: 4,
        TRACE_SUMMARIES: 2,
        FAILED_SPANS: 0,
        SLOW_SPANS: 2,
        JOURNEY_STEPS: 1,
    }, "the workload holds the trace in every table before the delete"
    assert store.delete_traces([late]) == 4
    assert set(kept_of(store, late).values()) == {0}
    store.compact_rollups()
    assert set(kept_of(store, late).values()) == {0}, "a fold brings nothing of it back"
    assert store._fetch(
        f"SELECT count(*) FROM {JOURNEY_SUMMARIES} WHERE session_id = ?", [f"s-{LATE}"]
    ) == [(0,)]
    assert kept_of(store, kept)[TABLE] == 2, "the other traces stay"


def test_an_sdk_report_in_a_deleted_trace_goes_with_it_wherever_it_starts(
    store: DuckDBStore,
) -> None:
    """Summaries leave SDK reports out, so their range does not bound one: a trace
    holding one (however it came to) is deleted by reading every trace id."""
    hour_with_late_spans(store)
    report = span_record(
        trace_id(LATE), "r1", None, "web", SDK_STATS_SPAN, T0 - 60 * MINUTE, T0 - 60 * MINUTE + MS
    )
    write(store, [report])
    assert kept_of(store, trace_id(LATE))[TABLE] == 5
    assert store.delete_traces([trace_id(LATE)]) == 5
    assert kept_of(store, trace_id(LATE))[TABLE] == 0
