"""The ``Store`` contract for the fleet aggregates kept at write time, on every backend.

Each test writes a few hand-built traces and asks the aggregate reads what a user
of the dashboards relies on: exact counts in the right minute whatever the arrival
order, a re-sent batch counted once, deletions removed, percentiles within the
documented error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import pytest

from support.kept_apart import HOUR as TAIL_HOUR
from support.kept_apart import tail_request
from support.spans import payment_call, span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import OTHER_OPERATION, EdgeKind, Split, Target, TimeWindow
from threadline.server.analysis import sketch, time_slices
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.request_paths import path_time, request_path
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import kept_paths

# Each test names the rollup reads it needs, so a backend joins test by test.
fleet = pytest.mark.store_methods("operation_red", "service_red", "service_map", "capped_services")
groups = pytest.mark.store_methods("trace_groups")
propagation = pytest.mark.store_methods("propagation")

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
WAIT_S: Final = 30.0
DAY: Final = TimeWindow(T0 - 3600 * S, T0 + 3600 * S)
# More distinct span names for one service than a store should aggregate one by one.
FLOOD: Final = 620


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def call(
    trace: str, at_ms: int, *, failed: bool = False, user: str | None = None
) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT "POST /charge" → payments SERVER "charge" (80 ms)."""
    return payment_call(trace, T0 + at_ms * MS, failed=failed, user=user)


def edge_calls(store: Store, window: TimeWindow = DAY) -> dict[tuple[str, str, EdgeKind], int]:
    found = store.service_map(window)
    return {(e.caller, e.callee, e.kind): e.stats.calls for e in found.edges}


def requests(store: Store, window: TimeWindow = DAY) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (r.service, r.operation): (r.stats.requests, r.stats.errors)
        for r in store.operation_red(window)
    }


@fleet
def test_entry_spans_and_edges_are_counted(store: Store) -> None:
    """Each entry span counts once per operation, each CLIENT→SERVER pair once per edge."""
    write(store, call("1" * 32, 0) + call("2" * 32, 1000, failed=True))
    assert requests(store) == {("payments", "charge"): (2, 1), ("web", "GET /pay"): (2, 0)}
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 2}
    edge = store.service_map(DAY).edges[0]
    assert edge.stats.errors == 1
    assert edge.stats.latency.p50 == pytest.approx(80 * MS, rel=sketch.PROMISED_ERROR)


@fleet
def test_a_resent_batch_is_stored_and_counted_once(store: Store) -> None:
    """An exporter retrying a batch it already delivered changes no count."""
    batch = call("1" * 32, 0)
    write(store, batch)
    write(store, batch)
    write(store, batch + batch)  # repeated within one batch too
    assert store.counts().spans == 3
    assert requests(store)[("web", "GET /pay")] == (1, 0)
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}


@fleet
@pytest.mark.parametrize("order", ["child first", "parent first"])
def test_a_late_side_of_a_call_completes_the_edge(store: Store, order: str) -> None:
    """Whichever span of a pair arrives later, the edge counts once, in the callee's minute."""
    spans = call("1" * 32, 59_999)  # the callee starts in the next minute
    parent, child = spans[:2], spans[2:]
    first, second = (child, parent) if order == "child first" else (parent, child)
    write(store, first)
    write(store, second)
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}
    callee_minute = TimeWindow(T0 + MINUTE, T0 + 2 * MINUTE)
    assert edge_calls(store, callee_minute) == {("web", "payments", EdgeKind.CALL): 1}
    assert edge_calls(store, TimeWindow(T0, T0 + MINUTE)) == {}


@fleet
def test_rollups_read_whole_minutes(store: Store) -> None:
    """A window counts every span of each minute it touches, and nothing outside them."""
    write(store, call("1" * 32, 5_000) + call("2" * 32, 65_000))
    first_half = TimeWindow(T0, T0 + 30 * S)
    assert requests(store, first_half)[("web", "GET /pay")] == (1, 0)
    touching_both = TimeWindow(T0 + 59 * S, T0 + 61 * S)
    assert requests(store, touching_both)[("web", "GET /pay")] == (2, 0)


@fleet
def test_red_series_buckets_by_minutes(store: Store) -> None:
    """A per-minute RED series puts each request in the minute it started."""
    write(store, call("1" * 32, 5_000) + call("2" * 32, 65_000) + call("3" * 32, 66_000))
    window = TimeWindow(T0, T0 + 3 * MINUTE)
    red = store.service_red("web", window, bucket_ns=MINUTE)
    assert [b.stats.requests for b in red.buckets] == [1, 2, 0]
    assert red.totals.requests == 3


@fleet
def test_deleting_traces_removes_them_from_the_aggregates(store: Store) -> None:
    """Tail sampling's drops vanish from RED and the service map together with the spans."""
    write(store, call("1" * 32, 0) + call("2" * 32, 1000, failed=True))
    assert store.delete_traces(["2" * 32]) == 3
    assert requests(store) == {("payments", "charge"): (1, 0), ("web", "GET /pay"): (1, 0)}
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}
    assert store.delete_traces(["2" * 32]) == 0  # repeated: nothing more is subtracted
    assert requests(store)[("web", "GET /pay")] == (1, 0)


@fleet
def test_erasing_a_user_removes_their_requests(store: Store) -> None:
    """Erasure leaves no count of the user's requests behind."""
    write(store, call("1" * 32, 0, user="u1") + call("2" * 32, 1000, user="u2"))
    assert store.erase_user(["u1"]).erased_spans == 3
    assert requests(store)[("web", "GET /pay")] == (1, 0)
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}


@fleet
@pytest.mark.parametrize("identity", ["hash-of-alice", "tenant/alice", "alice\u2028smith"])
def test_erasing_a_user_known_by_an_identity_attribute_removes_their_requests(
    store: Store, identity: str
) -> None:
    """A user named only in ``enduser.id`` (any form searched) leaves no count behind,
    whatever characters the id holds (a store writing ``/`` or U+2028 in JSON its own
    way still finds it)."""
    named = [
        span_record("1" * 32, "a1", None, "web", "GET /pay", T0, T0 + S),
        span_record(
            "1" * 32,
            "a2",
            "a1",
            "payments",
            "charge",
            T0,
            T0 + S // 2,
            kind=SpanKind.SERVER,
            attributes={"enduser.id": identity},
        ),
    ]
    write(store, named + call("2" * 32, 1000, user="u2"))
    assert edge_calls(store)[("web", "payments", EdgeKind.INFERRED)] == 1
    erased = store.erase_user(["alice", identity])
    assert erased.erased_spans == 2
    assert requests(store)[("web", "GET /pay")] == (1, 0)
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}


@fleet
def test_retention_removes_the_minutes_it_deletes(store: Store) -> None:
    """Spans past retention leave the aggregates; the minutes kept are untouched."""
    write(store, call("1" * 32, 0) + call("2" * 32, 120_000) + call("3" * 32, 130_000))
    assert store.delete_older_than(T0 + 125 * S) == 6
    assert requests(store)[("web", "GET /pay")] == (1, 0)
    assert edge_calls(store) == {("web", "payments", EdgeKind.CALL): 1}


@fleet
def test_spans_dated_1970_and_2100_land_in_their_minutes(store: Store) -> None:
    """Absurd timestamps are stored and counted in their own minutes, nowhere else."""
    epoch = [span_record("1" * 32, "a1", None, "web", "GET /old", 5 * S, 6 * S)]
    future = 4_102_444_800 * S  # 2100-01-01
    late = [span_record("2" * 32, "b1", None, "web", "GET /new", future, future + S)]
    write(store, epoch + late + call("3" * 32, 0))
    assert requests(store) == {("payments", "charge"): (1, 0), ("web", "GET /pay"): (1, 0)}
    assert requests(store, TimeWindow(0, MINUTE)) == {("web", "GET /old"): (1, 0)}
    assert requests(store, TimeWindow(future, future + MINUTE)) == {("web", "GET /new"): (1, 0)}


def lost_context(trace: str, at_ms: int) -> list[SpanRecord]:
    """payments takes a "charge" with no parent (its caller's context was lost), and a
    span of web whose parent never arrives."""
    start = T0 + at_ms * MS
    return [
        span_record(
            trace, "b1", None, "payments", "charge", start, start + 50 * MS, kind=SpanKind.SERVER
        ),
        span_record(trace, "b2", "gone", "web", "render", start + MS, start + 2 * MS),
    ]


def message(trace: str, at_ms: int, *, consumer_trace: str | None = None) -> list[SpanRecord]:
    """orders publishes message ``trace`` to "mail"; mail consumes it, in its own trace
    when ``consumer_trace`` is given (no link: the context was lost)."""
    start = T0 + at_ms * MS
    attributes = {"messaging.message.id": f"m-{trace}", "messaging.destination.name": "mail"}
    producer = span_record(
        trace,
        "p1",
        None,
        "orders",
        "publish",
        start,
        start + MS,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
    )
    consumer = span_record(
        consumer_trace or trace,
        "c1",
        None if consumer_trace else "p1",
        "mail",
        "send",
        start + 5 * MS,
        start + 9 * MS,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )
    return [producer, consumer]


@propagation
def test_propagation_counts_entries_orphans_and_hops(store: Store) -> None:
    """Lost contexts are counted per operation, service and hop, each with an example."""
    write(store, call("1" * 32, 0) + lost_context("2" * 32, 1000))
    write(store, message("3" * 32, 2000) + message("4" * 32, 3000, consumer_trace="5" * 32))
    found = store.propagation(DAY)
    assert [(e.service, e.operation, e.entry_spans, e.unparented) for e in found.entries] == [
        ("mail", "send", 2, 1),
        ("payments", "charge", 2, 1),
    ]
    assert {e.example_trace_id for e in found.entries} == {"5" * 32, "2" * 32}
    assert [(o.service, o.orphans, o.example_trace_id) for o in found.orphans] == [
        ("web", 1, "2" * 32)
    ]
    (hop,) = found.message_hops
    assert (hop.producer, hop.consumer, hop.destination) == ("orders", "mail", "mail")
    assert (hop.messages, hop.broken, hop.linked) == (2, 1, 0)
    assert (hop.example_producer_trace_id, hop.example_consumer_trace_id) == ("4" * 32, "5" * 32)


@propagation
def test_a_late_parent_ends_an_orphan_and_a_late_producer_completes_a_hop(store: Store) -> None:
    """A span counts as an orphan until its parent arrives; a hop counts once both sides have."""
    spans = call("1" * 32, 0)
    write(store, spans[2:])  # the callee, whose CLIENT parent is late
    assert [(o.service, o.orphans) for o in store.propagation(DAY).orphans] == [("payments", 1)]
    write(store, spans[:2])
    assert store.propagation(DAY).orphans == ()
    producer, consumer = message("3" * 32, 1000, consumer_trace="4" * 32)
    write(store, [consumer])
    assert store.propagation(DAY).message_hops == ()
    write(store, [producer])
    (hop,) = store.propagation(DAY).message_hops
    assert (hop.messages, hop.broken) == (1, 1)


@propagation
def test_deletions_take_their_breaks_with_them(store: Store) -> None:
    """Deleting a trace removes its orphans, its unparented entries and its message hops."""
    write(store, call("1" * 32, 0) + lost_context("2" * 32, 1000))
    write(store, message("3" * 32, 2000, consumer_trace="4" * 32))
    store.delete_traces(["2" * 32, "3" * 32])  # the producer's trace: the hop goes too
    found = store.propagation(DAY)
    assert found.orphans == ()
    assert found.message_hops == ()
    assert [(e.service, e.entry_spans, e.unparented) for e in found.entries] == [("payments", 1, 0)]


@groups
def test_examples_are_the_slowest_failed_requests_wherever_they_started(store: Store) -> None:
    """The examples of a failed split are the traces of its slowest failed requests, even
    when each started in a different minute, far apart, among faster failures."""
    spans = []
    for n in range(20):
        # Failed roots, one every four minutes; the slow ones in minutes 0, 8, ... 72.
        seconds = 10 + n if n % 2 == 0 else 1
        start = T0 + n * 4 * MINUTE
        spans.append(
            span_record(
                f"{n + 1:032x}",
                "a1",
                None,
                "web",
                "GET /pay",
                start,
                start + seconds * S,
                status=StatusCode.ERROR,
            )
        )
    write(store, spans)
    window = TimeWindow(T0, T0 + 80 * MINUTE)

    failed = store.trace_groups(Target(), Split.FAILED, window)

    assert failed.focus_traces == 20
    assert list(failed.examples) == [f"{n + 1:032x}" for n in (18, 16, 14, 12, 10)]


@groups
def test_failed_and_slow_requests_are_counted_per_target(store: Store) -> None:
    """Hotspot counts: failed requests of a service, of whole traces, and the slow ones."""
    spans = [
        span for n in range(10) for span in call(f"{n + 1:032x}", n * 1000, failed=n in (3, 7))
    ]
    write(store, spans)
    failed = store.trace_groups(Target("payments"), Split.FAILED, DAY)
    assert (failed.focus_traces, failed.baseline_traces) == (2, 8)
    assert set(failed.examples) == {f"{4:032x}", f"{8:032x}"}
    whole = store.trace_groups(Target(), Split.FAILED, DAY)
    assert (whole.focus_traces, whole.baseline_traces) == (0, 10)  # the roots succeeded
    slow = store.trace_groups(Target("web", "GET /pay"), Split.SLOW, DAY, percentile=50)
    assert slow.focus_traces + slow.baseline_traces == 10
    assert slow.threshold_ns == pytest.approx(100 * MS, rel=sketch.PROMISED_ERROR)


@groups
@pytest.mark.parametrize(
    ("percentile", "examples", "named"),
    [(0.0, 5, "percentile"), (100.0, 5, "percentile"), (90.0, 0, "examples")],
)
def test_a_split_refuses_a_percentile_out_of_range_or_no_examples(
    store: Store, percentile: float, examples: int, named: str
) -> None:
    """Every store refuses the same bad split arguments alike, naming the argument."""
    write(store, call(f"{1:032x}", 0, failed=True))
    assert store.trace_groups(Target("payments"), Split.FAILED, DAY).focus_traces == 1, "data"
    with pytest.raises(ValueError, match=named):
        store.trace_groups(
            Target("web", "GET /pay"), Split.SLOW, DAY, percentile=percentile, examples=examples
        )


@groups
def test_the_slow_threshold_counts_entry_spans_only(store: Store) -> None:
    """An operation's name on spans inside the service too (a handler's own span named
    like the route, a background task outliving its request): the threshold is the exact
    percentile of the requests alone, and the examples are slow requests' traces."""
    spans = []
    for n in range(10):
        trace, start, took = f"{n + 1:032x}", T0 + n * S, (n + 1) * 10 * MS
        spans.append(
            span_record(
                trace, "s", None, "payments", "charge", start, start + took, kind=SpanKind.SERVER
            )
        )
        # Just faster than the ninth request, in its latency bucket.
        inner = 90 * MS - 1_000
        spans.append(span_record(trace, "i", "s", "payments", "charge", start, start + inner))
    assert sketch.bucket_index(90 * MS - 1_000) == sketch.bucket_index(90 * MS)
    fast = f"{1:032x}"  # its request took 10 ms; a task it started, 200 ms
    spans.append(span_record(fast, "b", "s", "payments", "charge", T0, T0 + 200 * MS))
    write(store, spans)
    slow = store.trace_groups(Target("payments", "charge"), Split.SLOW, DAY, percentile=90)
    # quantile_cont over 10, 20, ..., 100 ms: 90 ms + 0.1 × 10 ms.
    assert slow.threshold_ns == pytest.approx(91 * MS)
    assert (slow.focus_traces, slow.baseline_traces) == (1, 9)
    assert slow.examples == (f"{10:032x}",)


@fleet
def test_capped_services_agree_with_the_operations_they_fold(store: Store) -> None:
    """A service past the store's cap on names is listed with the names it keeps, and its
    RED holds exactly those plus the "(other)" row; a service under it is not listed."""
    flood = [
        span_record(f"{n + 1:032x}", "a1", None, "web", f"GET /item/{n:04d}", T0 + n, T0 + n + MS)
        for n in range(FLOOD)
    ]
    write(store, [*flood, *call("f" * 32, 0)])
    capped = store.capped_services()
    assert "payments" not in {c.service for c in capped}
    red = requests(store)
    web = {operation for service, operation in red if service == "web"}
    if not capped:  # a store that keeps every name
        assert len(web) == FLOOD + 1
        return
    (cap,) = capped
    assert cap.service == "web"
    assert OTHER_OPERATION in web
    assert len(web) == cap.kept_operations + 1
    assert sum(n for (service, _), (n, _) in red.items() if service == "web") == FLOOD + 1


@groups
def test_the_first_sampled_traces_come_with_their_spans(store: Store) -> None:
    """A critical path walks whole traces: the first ``sample_ids`` traces of each group
    come with every span of theirs, as ``get_traces`` reads them but the SDK's reports."""
    records = []
    for index in range(12):
        trace = f"{index + 1:032x}"
        start = T0 + index * 1000 * MS
        records += call(trace, index * 1000, failed=index % 3 == 0)
        records.append(span_record(trace, "s1", None, "web", SDK_STATS_SPAN, start, start + MS))
    write(store, records)
    target = Target("payments")
    groups = store.trace_groups(target, Split.FAILED, DAY, sample=10, sample_ids=2)
    assert (len(groups.focus_ids), len(groups.baseline_ids)) == (2, 2)
    ids = [*groups.focus_ids, *groups.baseline_ids]
    read = store.get_traces(ids)
    assert len(read) == 4 * (len(call("0" * 32, 0)) + 1)
    users = sorted(
        (span for span in read if span.name != SDK_STATS_SPAN),
        key=lambda span: (span.trace_id, span.start_ns, span.span_id),
    )
    assert list(groups.sample_spans) == users
    assert store.trace_groups(target, Split.FAILED, DAY, sample=10).sample_spans == ()


@groups
def test_the_walked_traces_spans_are_their_own_after_deletions(store: Store) -> None:
    """The walked traces' spans are found by the read's row positions: after whole
    traces are deleted (tail sampling) and the store folded, every span returned is
    one of the walked traces', with every column as ``get_traces`` reads it."""
    records = []
    for index in range(24):
        records += call(f"{index + 1:032x}", index * 1000, failed=index % 3 == 0)
    write(store, records)
    doomed = [f"{index + 1:032x}" for index in range(0, 24, 2)]
    assert store.delete_traces(doomed) == len(doomed) * len(call("0" * 32, 0))
    store.fold_pending()
    target = Target("payments")
    groups = store.trace_groups(target, Split.FAILED, DAY, sample=10, sample_ids=3)
    ids = [*groups.focus_ids, *groups.baseline_ids]
    assert len(ids) == 6
    assert not set(ids) & set(doomed)
    read = sorted(
        store.get_traces(ids), key=lambda span: (span.trace_id, span.start_ns, span.span_id)
    )
    assert read
    assert list(groups.sample_spans) == read


@groups
def test_walked_traces_come_with_their_spans_or_a_kept_path_of_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store may keep the request paths of some traces when it stores them (DuckDB: a
    hash share of its copies, widened here to half the range): each walked trace then
    comes with its spans or its kept path, never both, and a kept path holds the times
    the walk of its stored spans gives."""
    monkeypatch.setattr(kept_paths, "SLOW_SHARE", 2)
    monkeypatch.setattr(kept_paths, "OTHER_SHARE", 2)
    write(store, [span for i in range(300) for span in tail_request(f"{i + 1:032x}", i)])
    store.fold_pending()
    target = Target("web", "GET /pay")
    groups = store.trace_groups(target, Split.SLOW, TAIL_HOUR, sample=40, sample_ids=10)
    walked = {*groups.focus_ids, *groups.baseline_ids}
    with_spans = {span.trace_id for span in groups.sample_spans}
    assert len(walked) == 20
    assert not with_spans & set(groups.path_times)
    assert with_spans | set(groups.path_times) == walked
    for trace, times in groups.path_times.items():
        path = request_path(fix_up(store.get_traces([trace])).tree, target)
        assert path is not None
        assert times == path_time(path), trace


BUSY_HOUR: Final = TimeWindow(T0, T0 + 60 * MINUTE)
PER_MINUTE: Final = 40
SAMPLE: Final = 20


@groups
def test_the_sample_of_a_busy_hour_comes_from_slices_spread_over_it(store: Store) -> None:
    """Tail causes and hotspots read their sample span by span: drawn from the whole
    hour, its traces sit in every block of the span table and the read costs the hour's
    traffic; from a few slices spread over it, the read is the size of the sample. The
    baseline always comes from slices; a store that keeps the failed traces' spans apart
    (DuckDB) draws the focus from there, over the whole hour (``test_failed_spans``)."""
    starts: dict[str, int] = {}
    records = []
    for index in range(60 * PER_MINUTE):
        trace = call(f"{index:032x}", index * 60_000 // PER_MINUTE, failed=index % 10 == 0)
        starts[trace[0].trace_id] = trace[0].start_ns
        records += trace
    write(store, records)
    payments = Target("payments")
    groups = store.trace_groups(payments, Split.FAILED, BUSY_HOUR, sample=SAMPLE, sample_ids=SAMPLE)
    assert (groups.focus_traces, groups.baseline_traces) == (240, 2160)
    assert (groups.focus_sample, groups.baseline_sample) == (SAMPLE, SAMPLE)
    failed = {trace for trace in starts if int(trace, 16) % 10 == 0}
    assert set(groups.focus_ids) <= failed
    assert not set(groups.baseline_ids) & failed
    # The payments' errors are the focus traces' only origin: counted on the sample.
    charge = next(o for o in groups.operations if o.operation == "charge")
    assert (charge.focus_traces, charge.focus_error_traces) == (SAMPLE, SAMPLE)
    assert charge.baseline_error_traces == 0
    sampled = [starts[trace] for trace in groups.baseline_ids]
    ranges = time_slices.covering((start, start) for start in sampled)
    # A few short slices; drawn from the whole hour by hash, the same sample spreads so
    # that its 16 closest-packed ranges cover about twice this bound.
    assert sum(high - low for low, high in ranges) <= 8 * MINUTE
    # Spread over the hour: from its first quarter to its last.
    assert min(sampled) < T0 + 15 * MINUTE
    assert max(sampled) >= T0 + 45 * MINUTE


@groups
@pytest.mark.parametrize("split", [Split.FAILED, Split.SLOW])
def test_a_trace_failed_outside_the_slices_stays_out_of_the_baseline(
    store: Store, split: Split
) -> None:
    """A trace is failed (or slow) when any of its requests in the window is. A slice
    may hold only the ordinary request of a trace whose failed (or slow) retry came 90 s
    later: read from the slice, the trace looks ordinary. It must not join the baseline,
    where its errors (or slow calls) would read as the usual requests' own, and the
    baseline sample keeps its size."""
    records, focus = [], set()
    for index in range(60 * PER_MINUTE):
        trace = f"{index:032x}"
        at_ms = index * 60_000 // PER_MINUTE
        records += call(trace, at_ms)
        if index % 10 in (0, 3, 6) and at_ms + 90_000 < 60 * 60_000:
            focus.add(trace)
            retry = call(trace, at_ms + 90_000, failed=split is Split.FAILED)
            records += [
                replace(
                    span,
                    span_id=span.span_id.replace("a", "b"),
                    parent_span_id=span.parent_span_id and span.parent_span_id.replace("a", "b"),
                    # The slow retry's charge takes 800 ms rather than 80.
                    end_ns=span.end_ns + (720 * MS if split is Split.SLOW else 0),
                )
                for span in retry
            ]
    write(store, records)
    payments = Target("payments")
    groups = store.trace_groups(
        payments, split, BUSY_HOUR, percentile=90, sample=SAMPLE, sample_ids=SAMPLE
    )
    assert (groups.focus_traces, groups.baseline_traces) == (len(focus), 60 * PER_MINUTE)
    assert (groups.focus_sample, groups.baseline_sample) == (SAMPLE, SAMPLE)
    assert set(groups.focus_ids) <= focus
    assert len(groups.baseline_ids) == SAMPLE
    assert not set(groups.baseline_ids) & focus
    charge = next(o for o in groups.operations if o.operation == "charge")
    assert (charge.focus_traces, charge.baseline_traces) == (SAMPLE, SAMPLE)
    if split is Split.FAILED:
        assert (charge.focus_error_traces, charge.baseline_error_traces) == (SAMPLE, 0)
    else:
        # Self time of the baseline's charge: 80 ms a trace, none of the slow retries'.
        assert charge.baseline_self_ns == SAMPLE * 80 * MS
        # Squared per trace, as a mean's spread needs: a slow trace's 80 and 800 ms
        # calls count as one 880 ms (not 80² + 800²).
        assert charge.focus_self_squares == pytest.approx(SAMPLE * (880 * MS) ** 2)
        assert charge.baseline_self_squares == pytest.approx(SAMPLE * (80 * MS) ** 2)
