"""The ``Store`` contract for trace summaries kept at write time, on every backend.

Search and journey lists read one summary per trace; each test changes a trace the
way live traffic does (a late batch, a re-sent one, a deletion) and asks what a list
of traces shows: the row must follow the spans.
"""

from __future__ import annotations

from typing import Final

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import (
    SpanKind,
    SpanRecord,
    StatusCode,
    TraceCursor,
    TraceOrder,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import Store

S: Final = 1_000_000_000
MS: Final = 1_000_000
T0: Final = 1_700_000_040 * S
WAIT_S: Final = 30.0
TRACE: Final = "1" * 32
OTHER: Final = "2" * 32


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def root(trace: str, at_ms: int, took_ms: int, **fields: object) -> SpanRecord:
    start = T0 + at_ms * MS
    return span_record(trace, "r", None, "web", "GET /pay", start, start + took_ms * MS, **fields)


def child(
    trace: str, span_id: str, service: str, at_ms: int, took_ms: int, **fields: object
) -> SpanRecord:
    start = T0 + at_ms * MS
    return span_record(
        trace,
        span_id,
        "r",
        service,
        "charge",
        start,
        start + took_ms * MS,
        kind=SpanKind.SERVER,
        **fields,
    )


def only(store: Store, query: TraceQuery | None = None) -> TraceSummary:
    (found,) = store.search_traces(query or TraceQuery())
    return found


def test_a_late_batch_updates_its_trace_row(store: Store) -> None:
    """A trace's root arriving after its children renames the row and widens its times;
    counts, services and the error grow with each batch."""
    write(store, [child(TRACE, "c1", "payments", 10, 50, session_id="s1", user_id="u1")])
    early = only(store)
    assert (early.root_service, early.root_operation, early.span_count) == (
        "payments",
        "charge",
        1,
    )
    write(store, [root(TRACE, 0, 100)])
    write(store, [child(TRACE, "c2", "mail", 90, 200, status=StatusCode.ERROR)])
    assert only(store) == TraceSummary(
        trace_id=TRACE,
        start_ns=T0,
        duration_ns=290 * MS,
        root_service="web",
        root_operation="GET /pay",
        span_count=3,
        error_count=1,
        services=("mail", "payments", "web"),
        session_id="s1",
        user_id="u1",
    )


def test_late_spans_move_a_trace_in_orderings_and_filters(store: Store) -> None:
    """Newest, slowest, duration, error and service filters see the trace as it is now."""
    write(store, [root(TRACE, 0, 100), root(OTHER, 1_000, 200)])
    assert [t.trace_id for t in store.search_traces(TraceQuery(order="slowest"))] == [
        OTHER,
        TRACE,
    ]
    assert store.search_traces(TraceQuery(status=StatusCode.ERROR)) == []
    # A late child of the first trace, failing, in another service, far later.
    write(store, [child(TRACE, "c1", "mail", 2_000, 500, status=StatusCode.ERROR)])
    assert [t.trace_id for t in store.search_traces(TraceQuery(order="slowest"))] == [
        TRACE,
        OTHER,
    ]
    assert [t.trace_id for t in store.search_traces(TraceQuery(service="mail"))] == [TRACE]
    assert [t.trace_id for t in store.search_traces(TraceQuery(status=StatusCode.ERROR))] == [TRACE]
    assert [t.trace_id for t in store.search_traces(TraceQuery(min_duration_ns=2_000 * MS))] == [
        TRACE
    ]
    # The whole trace must lie in a time range: it now ends at 2.5 s.
    within = store.search_traces(TraceQuery(start_ns=T0, end_ns=T0 + 2 * S))
    assert [t.trace_id for t in within] == [OTHER]


def test_a_resent_batch_counts_once_in_its_trace_row(store: Store) -> None:
    """An exporter retrying a batch changes no count of the trace's row."""
    batch = [root(TRACE, 0, 100), child(TRACE, "c1", "payments", 10, 50)]
    write(store, batch)
    write(store, batch)
    write(store, batch + batch)
    assert only(store).span_count == 2


def test_journey_lists_follow_late_spans(store: Store) -> None:
    """A failing span arriving late makes its journey failed and longer."""
    write(store, [root(TRACE, 0, 100, session_id="s1"), root(OTHER, 0, 300, session_id="s2")])
    assert [j.session_id for j in store.list_journeys(order="slowest")] == ["s2", "s1"]
    assert store.list_journeys(failed=True) == []
    write(store, [child(TRACE, "c1", "payments", 50, 900, status=StatusCode.ERROR)])
    slowest = store.list_journeys(order="slowest")
    assert [j.session_id for j in slowest] == ["s1", "s2"]
    assert (slowest[0].span_count, slowest[0].error_count) == (2, 1)
    assert [j.session_id for j in store.list_journeys(failed=True)] == ["s1"]


def test_deleted_traces_leave_search_and_journeys(store: Store) -> None:
    """Tail sampling's drops are gone from every list, together with their spans."""
    write(store, [root(TRACE, 0, 100, session_id="s1"), root(OTHER, 10, 100, session_id="s2")])
    assert store.delete_traces([TRACE]) == 1
    assert [t.trace_id for t in store.search_traces(TraceQuery())] == [OTHER]
    assert [j.session_id for j in store.list_journeys()] == ["s2"]


def test_erasing_a_user_leaves_no_row_of_their_traces(store: Store) -> None:
    """Erasure removes the user's traces from search and their journeys from the list."""
    write(
        store,
        [
            root(TRACE, 0, 100, session_id="s1", user_id="u1"),
            child(TRACE, "c1", "payments", 10, 50, session_id="s1"),
            root(OTHER, 10, 100, session_id="s2", user_id="u2"),
        ],
    )
    assert store.erase_user(["u1"]).erased_spans == 2
    assert [t.trace_id for t in store.search_traces(TraceQuery())] == [OTHER]
    assert store.search_traces(TraceQuery(user_id="u1")) == []
    assert [j.session_id for j in store.list_journeys()] == ["s2"]


def test_retention_drops_aged_traces_and_recounts_cut_ones(store: Store) -> None:
    """A trace wholly before the cutoff goes; a trace the cutoff cuts is listed with the
    spans it keeps."""
    write(
        store,
        [
            root(OTHER, 0, 100),
            root(TRACE, 0, 20_000),
            child(TRACE, "c1", "payments", 10_000, 500, status=StatusCode.ERROR),
        ],
    )
    assert store.delete_older_than(T0 + 5 * S) == 2
    cut = only(store)
    assert (cut.trace_id, cut.start_ns, cut.duration_ns) == (TRACE, T0 + 10 * S, 500 * MS)
    assert (cut.root_service, cut.span_count, cut.error_count) == ("payments", 1, 1)


def test_spans_dated_1970_and_2100_are_listed_at_their_times(store: Store) -> None:
    """Absurd timestamps make ordinary rows: the 2100 trace is the newest, the 1970 one
    the oldest, and a trace holding both is a 130-year trace, not an overflow."""
    future = 4_102_444_800 * S  # 2100-01-01
    write(
        store,
        [
            span_record("a" * 32, "a1", None, "web", "GET /old", 5 * S, 6 * S),
            span_record("b" * 32, "b1", None, "web", "GET /new", future, future + S),
            span_record("c" * 32, "c1", None, "web", "GET /both", 5 * S, 6 * S),
            span_record("c" * 32, "c2", "c1", "web", "later", future, future + S),
            root(TRACE, 0, 100),
        ],
    )
    newest = store.search_traces(TraceQuery())
    # Equal starts are ordered by trace id.
    assert [t.trace_id for t in newest] == ["b" * 32, TRACE, "a" * 32, "c" * 32]
    slowest = store.search_traces(TraceQuery(order="slowest", limit=1))
    assert slowest[0].duration_ns == future + S - 5 * S
    in_1970 = store.search_traces(TraceQuery(start_ns=0, end_ns=60 * S))
    assert [t.trace_id for t in in_1970] == ["a" * 32]


# Each order's key of a trace (start or duration) and whether larger keys come first.
ORDERS: Final[dict[TraceOrder, tuple[str, bool]]] = {
    "recent": ("start_ns", True),
    "oldest": ("start_ns", False),
    "slowest": ("duration_ns", True),
    "fastest": ("duration_ns", False),
}


def test_pages_of_tied_traces_follow_each_other_by_trace_id(store: Store) -> None:
    """Twelve traces sharing three durations and two starts, folded or not: each page of
    each order, by offset or by cursor, holds the traces the order puts there, the
    trace id settling every tie, so no trace is shown twice or skipped between pages."""
    write(
        store,
        [root(f"{index + 1:032x}", index % 2, 100 + 100 * (index % 3)) for index in range(12)],
    )
    for folded in (False, True):
        if folded:
            store.fold_pending()
        for order, (key, larger_first) in ORDERS.items():
            everything = store.search_traces(TraceQuery(limit=12, order=order))
            assert len(everything) == 12, "the traces were stored"
            expected = sorted(
                everything,
                key=lambda t: (-getattr(t, key) if larger_first else getattr(t, key), t.trace_id),
            )
            assert everything == expected, (order, folded)
            for limit in (1, 2, 5):
                for offset in range(13):
                    query = TraceQuery(limit=limit, order=order, offset=offset)
                    assert store.search_traces(query) == expected[offset : offset + limit]
                for end in range(limit - 1, 12, limit):
                    last = expected[end]
                    after = TraceCursor(order, getattr(last, key), last.trace_id)
                    page = store.search_traces(TraceQuery(limit=limit, order=order, after=after))
                    assert page == expected[end + 1 : end + 1 + limit], (order, folded, end)
