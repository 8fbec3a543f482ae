"""The ``Store`` contract, checked against every backend through the ``store`` fixture.

A small shop is written once per test: five traces over three sessions and two
users, with a failing payment, a trace whose root arrived late in the clock, a trace
whose root was never received, and a service that does not stamp the session id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Final

import pytest

from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanEvent,
    SpanKind,
    SpanLink,
    SpanRecord,
    StatusCode,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)
from threadline.server.storage.base import Store, StoreError, StoreOverloaded

StoreOpener = Callable[..., Store]
WriterHold = Callable[[Store], AbstractContextManager[None]]

S: Final = 1_000_000_000  # one second in nanoseconds
MS: Final = 1_000_000
T0: Final = 1_700_000_000 * S

WAIT_S: Final = 30.0

# Trace ids, oldest first.
CART_1 = "1" * 32  # s1/u1: web GET /cart -> cart lookup, 100 ms
CHECKOUT = "2" * 32  # s1/u1: web POST /checkout -> payments charge (error, no session), 900 ms
CART_2 = "3" * 32  # s2/u2: web GET /cart, root starts after its child (skew), 50 ms
ORPHAN = "4" * 32  # no session: two worker spans whose parent never arrived, 300 ms
HOME = "5" * 32  # s3/u1: web GET /, 20 ms


def at(ms: int) -> int:
    """A time ``ms`` milliseconds after the start of the shop's day."""
    return T0 + ms * MS


def shop() -> list[SpanRecord]:
    s1 = {"session_id": "s1", "user_id": "u1"}
    s2 = {"session_id": "s2", "user_id": "u2"}
    s3 = {"session_id": "s3", "user_id": "u1"}
    error = {"status": StatusCode.ERROR, "status_message": "card declined"}
    return [
        span_record(CART_1, "a1", None, "web", "GET /cart", at(0), at(100), **s1),
        span_record(CART_1, "a2", "a1", "cart", "lookup", at(10), at(60), **s1),
        span_record(CHECKOUT, "b1", None, "web", "POST /checkout", at(10_000), at(10_900), **s1),
        span_record(CHECKOUT, "b2", "b1", "payments", "charge", at(10_100), at(10_800), **error),
        span_record(CART_2, "c1", None, "web", "GET /cart", at(20_005), at(20_050), **s2),
        span_record(CART_2, "c2", "c1", "cart", "lookup", at(20_000), at(20_030), **s2),
        span_record(ORPHAN, "d2", "d0", "worker", "reindex", at(30_100), at(30_300)),
        span_record(
            ORPHAN, "d1", "d0", "worker", "load", at(30_000), at(30_200), status=StatusCode.OK
        ),
        span_record(HOME, "e1", None, "web", "GET /", at(40_000), at(40_020), **s3),
    ]


def write_all(store: Store, *batches: list[SpanRecord]) -> None:
    futures = [store.write(SpanBatch.from_records(records)) for records in batches]
    for future in futures:
        future.result(timeout=WAIT_S)


@pytest.fixture
def shop_store(store: Store) -> Store:
    records = shop()
    # Two requests, as two services would send them.
    write_all(store, records[:4], records[4:])
    return store


def trace_ids(summaries: list[TraceSummary]) -> list[str]:
    return [summary.trace_id for summary in summaries]


def test_written_spans_read_back_exactly(store: Store) -> None:
    """A trace reads back with every field a span was written with, ordered by start time."""
    root = SpanRecord(
        trace_id="ab" * 16,
        span_id="01" * 8,
        parent_span_id=None,
        service_name="web",
        name="POST /orders/{id}",
        kind=SpanKind.SERVER,
        start_ns=T0 + 5,
        end_ns=T0 + 900,
        status=StatusCode.ERROR,
        status_message="Bestellung fehlgeschlagen: ü €",
        session_id="sess-1",
        user_id="user-1",
        journey_id="checkout-test",
        attributes={
            "http.route": "/orders/{id}",
            "http.response.status_code": 500,
            "retry": True,
            "ratio": 0.25,
            "tags": ["a", "b"],
            "codes": [1, 2],
        },
        resource={"service.name": "web", "service.version": "1.2.3"},
        events=(SpanEvent("exception", T0 + 800, {"exception.type": "ValueError"}),),
        links=(SpanLink("cd" * 16, "02" * 8, {"link.reason": "retry"}),),
        scope_name="opentelemetry.instrumentation.flask",
    )
    kinds = [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER,
             SpanKind.UNSPECIFIED]  # fmt: skip
    statuses = [StatusCode.OK, StatusCode.UNSET]
    children = [
        SpanRecord(
            trace_id=root.trace_id,
            span_id=f"{index + 2:016x}",
            parent_span_id=root.span_id,
            service_name="worker",
            name=f"step {index}",
            kind=kind,
            # Written newest first: the store must order them.
            start_ns=T0 + 500 - index * 10,
            end_ns=T0 + 600,
            status=statuses[index % 2],
        )
        for index, kind in enumerate(kinds)
    ]

    write_all(store, [*children, root])

    assert store.get_trace(root.trace_id) == [root, *reversed(children)]


def test_many_traces_far_apart_are_read_whole(store: Store) -> None:
    """Traces a day apart (more of them than the ranges a read is cut into), one with a
    span that arrived half an hour late in a later batch, one with the SDK's report an
    hour before it, and with or without an unknown id: every stored span of the asked
    traces, grouped by trace, by start."""
    day = 86_400 * S
    traces = [
        [
            span_record(
                f"{index:032x}", "r", None, "web", "GET /", T0 + index * day, T0 + index * day + S
            ),
            span_record(
                f"{index:032x}",
                "c",
                "r",
                "db",
                "SELECT",
                T0 + index * day + MS,
                T0 + index * day + 2 * MS,
            ),
        ]
        for index in range(40)
    ]
    late = span_record(
        f"{7:032x}", "l", "r", "mail", "send", T0 + 7 * day + 1800 * S, T0 + 7 * day + 1801 * S
    )
    report = span_record(
        f"{9:032x}", "x", None, "web", SDK_STATS_SPAN, T0 + 9 * day - 3600 * S, T0 + 9 * day
    )
    write_all(store, [span for trace in traces for span in trace])
    write_all(store, [late, report])
    stored = [*(span for trace in traces for span in trace), late, report]
    asked = [f"{index:032x}" for index in range(0, 40, 3)] + [f"{7:032x}"]
    for wanted in (asked, [*asked, "f" * 32]):
        expected = sorted(
            (span for span in stored if span.trace_id in wanted),
            key=lambda span: (span.trace_id, span.start_ns),
        )
        assert store.get_traces(wanted) == expected


def test_unknown_trace_is_empty(shop_store: Store) -> None:
    """Asking for a trace that was never written gives no spans rather than an error."""
    assert shop_store.get_trace("9" * 32) == []


def test_search_summarises_each_trace(shop_store: Store) -> None:
    """A search row gives the trace's start, length, root, span and error counts and services."""
    (checkout,) = shop_store.search_traces(TraceQuery(service="payments"))

    assert checkout == TraceSummary(
        trace_id=CHECKOUT,
        start_ns=at(10_000),
        duration_ns=900 * MS,
        root_service="web",
        root_operation="POST /checkout",
        span_count=2,
        error_count=1,
        services=("payments", "web"),
        session_id="s1",
        user_id="u1",
    )


def test_root_is_the_parentless_span_even_when_it_starts_late(shop_store: Store) -> None:
    """The root operation is the span without a parent, not merely the earliest span."""
    (cart,) = shop_store.search_traces(TraceQuery(session_id="s2"))

    assert (cart.root_service, cart.root_operation) == ("web", "GET /cart")
    assert cart.start_ns == at(20_000)  # the trace starts with its (skewed) child
    assert cart.duration_ns == 50 * MS


def test_a_span_written_with_an_empty_parent_id_is_a_root(store: Store) -> None:
    """An empty parent id means no parent, as OTLP's empty ``parentSpanId`` does: the span
    names its trace and counts as its root, even when it starts after its child."""
    trace = "6" * 32
    write_all(
        store,
        [
            span_record(trace, "f1", "", "web", "GET /orders", at(5), at(80)),
            span_record(trace, "f2", "f1", "orders", "list", at(0), at(60)),
        ],
    )
    (found,) = store.search_traces(TraceQuery(limit=10))
    assert (found.root_service, found.root_operation) == ("web", "GET /orders")
    window = TimeWindow(at(0) - 60 * S, at(0) + 60 * S)
    whole = store.trace_groups(Target(), Split.FAILED, window)
    assert (whole.focus_traces, whole.baseline_traces) == (0, 1)


def test_trace_without_root_is_named_by_its_earliest_span(shop_store: Store) -> None:
    """A trace whose root never arrived is listed under its earliest span."""
    (orphan,) = shop_store.search_traces(TraceQuery(service="worker"))

    assert (orphan.root_service, orphan.root_operation) == ("worker", "load")
    assert (orphan.session_id, orphan.user_id) == (None, None)


# Each search and the traces it keeps, newest first; one store answers them all.
SEARCHES: Final[list[tuple[TraceQuery, list[str]]]] = [
    (TraceQuery(), [HOME, ORPHAN, CART_2, CHECKOUT, CART_1]),
    (TraceQuery(service="cart"), [CART_2, CART_1]),
    (TraceQuery(operation="GET /cart"), [CART_2, CART_1]),
    (TraceQuery(status=StatusCode.ERROR), [CHECKOUT]),
    (TraceQuery(status=StatusCode.OK), [ORPHAN]),
    (TraceQuery(min_duration_ns=300 * MS), [ORPHAN, CHECKOUT]),
    (TraceQuery(max_duration_ns=50 * MS), [HOME, CART_2]),
    (TraceQuery(min_duration_ns=100 * MS, max_duration_ns=300 * MS), [ORPHAN, CART_1]),
    (TraceQuery(start_ns=at(10_000), end_ns=at(31_000)), [ORPHAN, CART_2, CHECKOUT]),
    # The whole trace must lie in the range: CHECKOUT ends after it.
    (TraceQuery(start_ns=at(10_000), end_ns=at(10_500)), []),
    (TraceQuery(session_id="s1"), [CHECKOUT, CART_1]),
    (TraceQuery(user_id="u1"), [HOME, CHECKOUT, CART_1]),
    (TraceQuery(limit=2), [HOME, ORPHAN]),
    (TraceQuery(service="web", operation="GET /cart", session_id="s1"), [CART_1]),
    # Service, operation and status must hold on one span, not on different ones.
    (TraceQuery(service="web", operation="charge"), []),
    (TraceQuery(service="web", status=StatusCode.ERROR), []),
    (TraceQuery(service="nowhere"), []),
]


def test_search_filters_and_orders_newest_first(shop_store: Store) -> None:
    """Each search filter keeps exactly the matching traces, newest first, up to the limit."""
    for query, expected in SEARCHES:
        assert trace_ids(shop_store.search_traces(query)) == expected, query


# Attribute values as spans carry them, and the text a search gives for each.
ATTRIBUTE_VALUES: Final[list[tuple[object, str]]] = [
    ("gold", "gold"),
    ('say "hi"', 'say "hi"'),
    ("C:\\temp\\x", "C:\\temp\\x"),
    ("two\nlines\tand a tab", "two\nlines\tand a tab"),
    ("café ✓ \u2028 done", "café ✓ \u2028 done"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("'; DROP TABLE spans; --", "'; DROP TABLE spans; --"),
    (42, "42"),
    # Integers are looked for as their digits: never inside a longer number.
    (500, "500"),
    (1500, "1500"),
    (-500, "-500"),
    (12345678901234567890, "12345678901234567890"),
    (True, "true"),
]


def test_search_by_attribute_finds_each_kind_of_value_and_no_other(store: Store) -> None:
    """A ``key=value`` search finds the span carrying it, whatever characters the value
    holds, as a span or a resource attribute; never a span with the value under another
    key or inside a longer value; before and after the summaries fold (a store may find
    the page another way then)."""
    records = []
    for index, (value, _) in enumerate(ATTRIBUTE_VALUES):
        start = T0 + index * S
        for suffix, fields in (
            ("a1", {"attributes": {"probe": value}}),
            ("b2", {"resource": {"probe": value}}),
            ("c3", {"attributes": {"other": value, "probe": f"x{value}x"}}),
        ):
            trace_id = f"{index:030x}{suffix}"
            records.append(
                span_record(trace_id, "s1", None, "web", "GET /", start, start + MS, **fields)
            )
    write_all(store, records)

    for folded in (False, True):
        if folded:
            store.fold_pending()
        for index, (_, text) in enumerate(ATTRIBUTE_VALUES):
            found = store.search_traces(TraceQuery(attributes=(("probe", text),), limit=50))
            expected = [f"{index:030x}a1", f"{index:030x}b2"]
            assert sorted(trace_ids(found)) == expected, (text, folded)


def test_journey_by_session_lists_its_traces_oldest_first(shop_store: Store) -> None:
    """A session's journey is its traces in time order, each summarised over all its spans."""
    journey = shop_store.journey_traces(session_id="s1")

    assert trace_ids(journey) == [CART_1, CHECKOUT]
    cart, checkout = journey
    assert (cart.root_operation, cart.services, cart.error_count) == (
        "GET /cart",
        ("cart", "web"),
        0,
    )
    # The payments span carries no session id, yet belongs to the journey's trace.
    assert (checkout.root_operation, checkout.services, checkout.error_count) == (
        "POST /checkout",
        ("payments", "web"),
        1,
    )
    assert checkout.span_count == 2


def test_journey_by_user_spans_sessions(shop_store: Store) -> None:
    """A user's journey collects the traces of all their sessions in time order."""
    journey = shop_store.journey_traces(user_id="u1")

    assert trace_ids(journey) == [CART_1, CHECKOUT, HOME]
    assert [summary.session_id for summary in journey] == ["s1", "s1", "s3"]


def test_journey_traces_keeps_the_oldest_up_to_the_limit(shop_store: Store) -> None:
    """A journey longer than the limit is cut after its oldest traces."""
    assert trace_ids(shop_store.journey_traces(user_id="u1", limit=2)) == [CART_1, CHECKOUT]


def test_unknown_journey_is_empty(shop_store: Store) -> None:
    """A session nobody had gives an empty journey rather than an error."""
    assert shop_store.journey_traces(session_id="nobody") == []


def test_list_journeys_most_recent_first(shop_store: Store) -> None:
    """Journeys list by latest activity, each summarised over all spans of its traces."""
    journeys = shop_store.list_journeys(order="recent")

    assert [journey.session_id for journey in journeys] == ["s3", "s2", "s1"]
    assert journeys[2] == JourneySummary(
        session_id="s1",
        user_id="u1",
        start_ns=T0,
        end_ns=at(10_900),
        trace_count=2,
        span_count=4,
        error_count=1,
        services=("cart", "payments", "web"),
    )


def test_list_journeys_slowest_first(shop_store: Store) -> None:
    """Journeys list by length when asked for the slowest, and stop at the limit."""
    journeys = shop_store.list_journeys(order="slowest", limit=2)

    assert [journey.session_id for journey in journeys] == ["s1", "s2"]


def test_list_journeys_in_a_time_range(shop_store: Store) -> None:
    """start_ns / end_ns keep the journeys' traces with a span started in the range."""
    later = shop_store.list_journeys(start_ns=at(15_000))
    assert [journey.session_id for journey in later] == ["s3", "s2"]
    s1 = shop_store.list_journeys(end_ns=at(15_000))
    assert [(journey.session_id, journey.trace_count) for journey in s1] == [("s1", 2)]
    # A range cutting s1 summarises the trace inside it, whole.
    middle = shop_store.list_journeys(start_ns=at(5_000), end_ns=at(15_000))
    assert [(j.session_id, j.trace_count, j.span_count) for j in middle] == [("s1", 1, 2)]


def test_list_journeys_failed_or_not_and_a_trace_of_two_sessions(shop_store: Store) -> None:
    """``failed`` keeps the journeys that met an error (or those that did not); a trace
    whose spans carry two sessions is in both journeys, whole."""
    assert [j.session_id for j in shop_store.list_journeys(failed=True)] == ["s1"]
    assert [j.session_id for j in shop_store.list_journeys(failed=False)] == ["s3", "s2"]
    shared = "6" * 32
    write_all(
        shop_store,
        [
            span_record(
                shared, "f1", None, "web", "GET /", at(50_000), at(50_100), session_id="s8"
            ),
            span_record(
                shared,
                "f2",
                "f1",
                "cart",
                "lookup",
                at(50_010),
                at(50_050),
                session_id="s9",
                user_id="u8",
            ),
        ],
    )
    journeys = {j.session_id: j for j in shop_store.list_journeys()}
    for session in ("s8", "s9"):
        journey = journeys[session]
        assert (journey.trace_count, journey.span_count, journey.error_count) == (1, 2, 0)
        assert (journey.services, journey.user_id) == (("cart", "web"), "u8")
        assert (journey.start_ns, journey.end_ns) == (at(50_000), at(50_100))


def test_ids_with_prefix(shop_store: Store) -> None:
    """Trace and session ids by their first characters: sorted, distinct, up to the limit."""
    write_all(
        shop_store,
        [
            span_record(
                "1" * 8 + "a" * 24,
                "f1",
                None,
                "web",
                "GET /",
                at(50_000),
                at(50_001),
                session_id="s1-later",
            ),
        ],
    )
    assert shop_store.ids_with_prefix("trace_id", "11111111", limit=10) == [
        CART_1,
        "1" * 8 + "a" * 24,
    ]
    assert shop_store.ids_with_prefix("trace_id", "11111111", limit=1) == [CART_1]
    assert shop_store.ids_with_prefix("trace_id", "abcdefab", limit=10) == []
    assert shop_store.ids_with_prefix("session_id", "s1", limit=10) == ["s1", "s1-later"]
    assert shop_store.ids_with_prefix("session_id", "s1-", limit=10) == ["s1-later"]


@pytest.mark.store_methods("operation_red", "service_map", "sdk_stats")
def test_sdk_stats_spans_are_not_user_traffic(store: Store) -> None:
    """The SDK's threadline.sdk.stats spans: in no list, in sdk_stats, readable by id."""
    stats_trace = "9" * 32
    write_all(
        store,
        [
            span_record(CART_1, "a1", None, "web", "GET /cart", at(0), at(100), session_id="s1"),
            span_record(
                stats_trace,
                "f9",
                None,
                "web",
                "threadline.sdk.stats",
                at(50),
                at(50),
                kind=SpanKind.INTERNAL,
                attributes={"threadline.sdk.spans.exported": 12, "process.pid": 7},
            ),
        ],
    )
    assert trace_ids(store.search_traces(TraceQuery())) == [CART_1]
    assert store.services() == [ServiceOperations("web", ("GET /cart",))]
    assert [journey.span_count for journey in store.list_journeys()] == [1]
    window = TimeWindow(start_ns=at(-1000), end_ns=at(1000))
    assert [red.operation for red in store.operation_red(window)] == ["GET /cart"]
    assert [node.stats.requests for node in store.service_map(window).services] == [1]
    reports = store.sdk_stats("web", window).processes
    assert [(p.exported, p.reports) for p in reports] == [(12, 1)]
    assert [span.name for span in store.get_trace(stats_trace)] == ["threadline.sdk.stats"]


def test_services_lists_each_service_with_its_operations(shop_store: Store) -> None:
    """Every service seen appears once, sorted, with its sorted span names."""
    assert shop_store.services() == [
        ServiceOperations("cart", ("lookup",)),
        ServiceOperations("payments", ("charge",)),
        ServiceOperations("web", ("GET /", "GET /cart", "POST /checkout")),
        ServiceOperations("worker", ("load", "reindex")),
    ]


def test_counts(shop_store: Store) -> None:
    """Counts give the stored spans, distinct traces and distinct sessions."""
    assert shop_store.counts() == StoreCounts(spans=9, traces=5, sessions=3)


def test_empty_store_answers_every_query(store: Store) -> None:
    """A new store answers every query with nothing rather than failing."""
    assert store.counts() == StoreCounts(spans=0, traces=0, sessions=0)
    assert store.search_traces(TraceQuery()) == []
    assert store.list_journeys() == []
    assert store.services() == []


def test_concurrent_writes_from_many_threads_all_land(store: Store) -> None:
    """Twenty threads writing at once lose no span."""
    threads_n, writes_per_thread, spans_per_write = 20, 10, 5
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def send(thread_index: int) -> None:
        try:
            barrier.wait(timeout=WAIT_S)
            futures: list[Future[None]] = []
            for write_index in range(writes_per_thread):
                trace_id = f"{thread_index:016x}{write_index:016x}"
                records = [
                    span_record(
                        trace_id, f"{n:016x}", None, f"svc{thread_index}", "op", T0 + n, T0 + n + 1
                    )
                    for n in range(spans_per_write)
                ]
                futures.append(store.write(SpanBatch.from_records(records)))
            for future in futures:
                future.result(timeout=WAIT_S)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S)

    assert errors == []
    total = threads_n * writes_per_thread
    assert store.counts() == StoreCounts(spans=total * spans_per_write, traces=total, sessions=0)


def test_write_after_close_fails_clearly(store: Store) -> None:
    """Writing to a closed store raises a store error at once; closing twice is harmless."""
    store.close()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.write(SpanBatch.from_records(shop()))


def test_close_finishes_pending_writes(store: Store) -> None:
    """Writes accepted before close are committed by the time close returns."""
    futures = [store.write(SpanBatch.from_records([record])) for record in shop()]

    store.close()

    assert all(future.done() and future.exception() is None for future in futures)


def test_full_queue_refuses_writes_at_once(
    open_store: StoreOpener, hold_writer: WriterHold
) -> None:
    """With the pending-write bound reached, the next write raises StoreOverloaded at once."""
    store = open_store(max_pending_batches=1)
    records = shop()

    with hold_writer(store):
        accepted = store.write(SpanBatch.from_records(records[:2]))
        with pytest.raises(StoreOverloaded):
            store.write(SpanBatch.from_records(records[2:4]))

    accepted.result(timeout=WAIT_S)
    assert store.get_trace(CART_1) == records[:2]
    assert store.get_trace(CHECKOUT) == []
