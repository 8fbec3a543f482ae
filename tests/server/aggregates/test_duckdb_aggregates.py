"""The DuckDB store's aggregates against answers the tests compute from the same spans.

Every expected number here is computed in Python from the generated spans
(``statistics.quantiles`` with linear interpolation for percentiles, the pure
``analysis.tree`` for self time), never copied from a run of the store.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from unittest.mock import patch

import pytest

from support.statements import statements
from threadline.server.aggregates import Percentiles, Split, Target, TimeWindow
from threadline.server.analysis import sketch
from threadline.server.analysis.tail_latency import explain
from threadline.server.analysis.tree import build_tree
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, TraceCursor, TraceOrder, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore, trace_reads

from .shop import (
    BASE,
    BROKEN_HOP,
    LINKED_HOP,
    WINDOW_END,
    WINDOW_START,
    S,
    Shop,
    build_shop,
    trace_id,
)

WINDOW = TimeWindow(WINDOW_START, WINDOW_END)
CHECKOUT = Target("gateway", "POST /checkout")


@pytest.fixture(scope="module")
def shop() -> Shop:
    return build_shop()


@pytest.fixture(scope="module")
def store(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """A DuckDB file holding the shop, written in a few batches as ingest would."""
    opened = DuckDBStore(tmp_path_factory.mktemp("aggregates") / "spans.duckdb")
    try:
        for start in range(0, len(shop.spans), 500):
            opened.write(SpanBatch.from_records(shop.spans[start : start + 500])).result()
        yield opened
    finally:
        opened.close()


def percentiles(values: Sequence[float]) -> Percentiles:
    """Linear-interpolation percentiles, as SQL's quantile_cont defines them."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return Percentiles(p50=cuts[49], p90=cuts[89], p95=cuts[94], p99=cuts[98])


def approx(value: Percentiles | None) -> object:
    """Exact percentiles as the rollups answer them: within the sketch's relative error."""
    assert value is not None
    return pytest.approx((value.p50, value.p90, value.p95, value.p99), rel=sketch.ALPHA + 1e-9)


def as_tuple(value: Percentiles | None) -> tuple[float, ...]:
    assert value is not None
    return (value.p50, value.p90, value.p95, value.p99)


def is_entry(span: SpanRecord) -> bool:
    return span.kind in (SpanKind.SERVER, SpanKind.CONSUMER) or not span.parent_span_id


def in_window(span: SpanRecord, window: TimeWindow = WINDOW) -> bool:
    return window.start_ns <= span.start_ns < window.end_ns


def test_service_map_edges_and_percentiles_match_the_spans(shop: Shop, store: DuckDBStore) -> None:
    """Each caller → callee edge has the call count, errors and callee percentiles of its pairs."""
    by_id = {(s.trace_id, s.span_id): s for s in shop.spans}
    durations: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    dwells: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    errors: dict[tuple[str, str, bool], int] = defaultdict(int)
    for child in shop.spans:
        parent = by_id.get((child.trace_id, child.parent_span_id or ""))
        if parent is None or not in_window(child):
            continue
        call = parent.kind is SpanKind.CLIENT and child.kind is SpanKind.SERVER
        message = parent.kind is SpanKind.PRODUCER and child.kind is SpanKind.CONSUMER
        inferred = (
            not call and child.kind is SpanKind.SERVER and parent.service_name != child.service_name
        )
        if call or message or inferred:
            key = (parent.service_name, child.service_name, message)
            durations[key].append(child.duration_ns)
            errors[key] += child.is_error
            if message:
                dwells[key].append(child.start_ns - parent.end_ns)

    found = store.service_map(WINDOW)
    edges = {(e.caller, e.callee, e.kind.value == "message"): e.stats for e in found.edges}
    assert set(edges) == set(durations)
    for key, values in durations.items():
        assert edges[key].calls == len(values), key
        assert edges[key].errors == errors[key], key
        assert as_tuple(edges[key].latency) == approx(percentiles(values)), key
        if key[2]:
            assert as_tuple(edges[key].queue_dwell) == approx(percentiles(dwells[key]))
        else:
            assert edges[key].queue_dwell is None
    # The broken and the linked message hop have no parent pair: one fewer each.
    assert edges[("gateway", "notifications", True)].calls == len(shop.checkout_ids) - 2
    assert edges[("gateway", "inventory", False)].errors > 0
    operation_calls = sum(e.stats.calls for e in found.operation_edges if e.callee == "payments")
    assert operation_calls == edges[("gateway", "payments", False)].calls


def test_operation_red_matches_the_entry_spans(shop: Shop, store: DuckDBStore) -> None:
    """Requests, errors and exact percentiles per operation count SERVER/CONSUMER and root spans."""
    expected: dict[tuple[str, str], list[SpanRecord]] = defaultdict(list)
    for span in shop.spans:
        if is_entry(span) and in_window(span):
            expected[(span.service_name, span.name)].append(span)
    found = {(op.service, op.operation): op.stats for op in store.operation_red(WINDOW)}
    assert set(found) == set(expected)
    for key, spans in expected.items():
        stats = found[key]
        assert stats.requests == len(spans)
        assert stats.errors == sum(s.is_error for s in spans)
        if len(spans) > 1:
            assert as_tuple(stats.latency) == approx(percentiles([s.duration_ns for s in spans]))
    only_gateway = store.operation_red(WINDOW, service="gateway")
    assert {op.service for op in only_gateway} == {"gateway"}


def test_service_red_buckets_cover_the_window(shop: Shop, store: DuckDBStore) -> None:
    """Buckets are aligned, gapless, and each holds the requests that started in it."""
    minute = 60 * S
    window = TimeWindow(BASE // minute * minute, (BASE + 180 * S) // minute * minute + minute)
    red = store.service_red("gateway", window, bucket_ns=minute)
    starts = [b.start_ns for b in red.buckets]
    assert starts == list(range(window.start_ns, window.end_ns, minute))
    roots = [s for s in shop.spans if s.service_name == "gateway" and is_entry(s)]
    for bucket in red.buckets:
        inside = [s for s in roots if bucket.start_ns <= s.start_ns < bucket.start_ns + minute]
        assert bucket.stats.requests == len(inside)
        assert bucket.stats.errors == sum(s.is_error for s in inside)
        if len(inside) > 1:
            durations = [s.duration_ns for s in inside]
            assert as_tuple(bucket.stats.latency) == approx(percentiles(durations))
        if not inside:
            assert bucket.stats.latency is None
    assert red.totals.requests == sum(b.stats.requests for b in red.buckets)
    checkout = store.service_red("gateway", window, operation="POST /checkout", bucket_ns=minute)
    assert [op.operation for op in checkout.operations] == ["POST /checkout"]


def _checkout_roots(shop: Shop) -> list[SpanRecord]:
    return [s for s in shop.spans if s.name == "POST /checkout" and in_window(s)]


def test_slow_checkouts_rank_the_slow_provider_first(shop: Shop, store: DuckDBStore) -> None:
    """payment.provider=slowpay ranks first among values, the provider call first in time."""
    roots = _checkout_roots(shop)
    threshold = percentiles([s.duration_ns for s in roots]).p90
    slow = {s.trace_id for s in roots if s.duration_ns >= threshold}
    groups = store.trace_groups(CHECKOUT, Split.SLOW, WINDOW, percentile=90)
    assert groups.threshold_ns == pytest.approx(threshold)
    assert (groups.focus_traces, groups.baseline_traces) == (len(slow), len(roots) - len(slow))
    assert set(groups.examples) <= slow

    found = explain(groups)
    top = found.attributes[0]
    assert (top.key, top.value) == ("payment.provider", "slowpay")
    assert top.focus_traces == len(slow & shop.slowpay_ids)
    assert top.baseline_traces == len(shop.slowpay_ids - slow)
    growth = found.time_growth[0]
    assert (growth.service, growth.operation) == ("payments", "provider call")


def test_group_self_time_equals_the_tree_analysis(shop: Shop, store: DuckDBStore) -> None:
    """SQL self time per operation equals analysis.tree's, summed over the same traces."""
    groups = store.trace_groups(CHECKOUT, Split.SLOW, WINDOW)
    members = {s.trace_id for s in _checkout_roots(shop)}
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in shop.spans:
        if span.trace_id in members:
            by_trace[span.trace_id].append(span)
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for spans in by_trace.values():
        for node in build_tree(spans).nodes:
            expected[(node.span.service_name, node.span.name)] += node.self_time_ns
    found = {
        (op.service, op.operation): op.focus_self_ns + op.baseline_self_ns
        for op in groups.operations
    }
    assert found == dict(expected)


def test_failed_checkouts_rank_the_failing_host_first(shop: Shop, store: DuckDBStore) -> None:
    """Errors start in inventory's reserve; host.name=inventory-2 is the value they share."""
    roots = _checkout_roots(shop)
    failed = {s.trace_id for s in roots if s.is_error}
    assert failed, "the generated shop has failing checkouts"
    groups = store.trace_groups(CHECKOUT, Split.FAILED, WINDOW)
    assert groups.focus_traces == len(failed)
    found = explain(groups)
    origin = found.error_sources[0]
    assert (origin.service, origin.operation) == ("inventory", "reserve")
    top = found.attributes[0]
    assert (top.key, top.value) == ("host.name", "inventory-2")
    whole_traces = store.trace_groups(Target(), Split.FAILED, WINDOW)
    assert whole_traces.focus_traces == len(failed)


def test_propagation_finds_the_broken_hops(shop: Shop, store: DuckDBStore) -> None:
    """The detached call, the unlinked message and the lost parent are each found, once."""
    findings = store.propagation(WINDOW)
    unparented = {(e.service, e.operation): e for e in findings.entries if e.unparented}
    assert set(unparented) == {("inventory", "reserve"), ("notifications", "orders process")}
    assert unparented[("inventory", "reserve")].example_trace_id == shop.detached_trace
    assert unparented[("notifications", "orders process")].unparented == 1  # linked is fine
    assert "gateway" not in {e.service for e in findings.entries}  # nobody calls the gateway
    (hop,) = findings.message_hops
    assert (hop.producer, hop.consumer, hop.destination) == ("gateway", "notifications", "orders")
    assert (hop.messages, hop.broken, hop.linked) == (len(shop.checkout_ids), 1, 1)
    assert (hop.example_producer_trace_id, hop.example_consumer_trace_id) == (shop.broken_hop_trace)
    assert [(o.service, o.orphans, o.example_trace_id) for o in findings.orphans] == [
        ("catalog", 1, shop.orphan_trace)
    ]
    assert shop.broken_hop_trace[0] == trace_id(BROKEN_HOP)
    assert trace_id(LINKED_HOP) in shop.checkout_ids


def _ids(store: DuckDBStore, attributes: tuple[tuple[str, str], ...]) -> list[str]:
    query = TraceQuery(limit=1000, attributes=attributes)
    return [t.trace_id for t in store.search_traces(query)]


def test_attribute_filters_match_span_and_resource_attributes(
    shop: Shop, store: DuckDBStore
) -> None:
    """Attribute filters match span or resource attributes, each pair on any span."""
    assert set(_ids(store, attributes=(("payment.provider", "slowpay"),))) == shop.slowpay_ids
    on_host = {s.trace_id for s in shop.spans if s.resource.get("host.name") == "inventory-2"}
    assert set(_ids(store, attributes=(("host.name", "inventory-2"),))) == on_host
    both = (("payment.provider", "slowpay"), ("host.name", "inventory-2"))
    assert set(_ids(store, attributes=both)) == shop.slowpay_ids & on_host
    assert _ids(store, attributes=(("payment.provider", "cheapo"),)) == []


@pytest.mark.parametrize(
    "hostile",
    ["' OR 1=1 --", "slowpay' OR '1'='1", '"; DROP TABLE spans; --', "%", "$.*", "/~1"],
)
def test_hostile_attribute_values_and_keys_are_data(store: DuckDBStore, hostile: str) -> None:
    """Injection-looking keys and values match nothing and raise nothing."""
    assert _ids(store, attributes=(("payment.provider", hostile),)) == []
    assert _ids(store, attributes=((hostile, "slowpay"),)) == []
    assert store.counts().spans > 0


@pytest.mark.parametrize("order", ["recent", "oldest", "slowest", "fastest"])
def test_cursor_and_offset_pages_are_stable(store: DuckDBStore, order: TraceOrder) -> None:
    """Paging by cursor or by offset yields the full ordered list once, ties included."""
    everything = store.search_traces(TraceQuery(limit=1000, order=order))
    key = (lambda t: t.start_ns) if order in ("recent", "oldest") else (lambda t: t.duration_ns)
    descending = order in ("recent", "slowest")
    expected = sorted(everything, key=lambda t: ((-key(t) if descending else key(t)), t.trace_id))
    assert everything == expected
    by_cursor: list[str] = []
    by_offset: list[str] = []
    query = TraceQuery(limit=7, order=order)
    for _ in range(len(everything)):
        page = store.search_traces(query)
        by_cursor += [t.trace_id for t in page]
        if len(page) < 7:
            break
        query = TraceQuery(
            limit=7,
            order=order,
            after=TraceCursor(order, key(page[-1]), page[-1].trace_id),
        )
    for offset in range(0, len(everything) + 7, 7):
        page = store.search_traces(TraceQuery(limit=7, order=order, offset=offset))
        by_offset += [t.trace_id for t in page]
    assert by_cursor == [t.trace_id for t in everything]
    assert by_offset == by_cursor


def test_journeys_can_be_limited_to_failed_ones(shop: Shop, store: DuckDBStore) -> None:
    """failed=True lists exactly the sessions with an error span; False the others."""
    failing_traces = {s.trace_id for s in shop.spans if s.is_error}
    failed = {s.session_id for s in shop.spans if s.trace_id in failing_traces}
    everyone = {s.session_id for s in shop.spans}
    found = store.list_journeys(failed=True, limit=1000, order="slowest")
    assert {j.session_id for j in found} == failed
    durations = [j.duration_ns for j in found]
    assert durations == sorted(durations, reverse=True)
    ok = store.list_journeys(failed=False, limit=1000)
    assert {j.session_id for j in ok} == everyone - failed


def test_get_traces_returns_each_traces_spans(shop: Shop, store: DuckDBStore) -> None:
    """get_traces returns every span of the asked traces, grouped by trace, by start."""
    wanted = shop.checkout_ids[:3]
    spans = store.get_traces(wanted)
    assert sorted({s.trace_id for s in spans}) == sorted(wanted)
    assert len(spans) == sum(1 for s in shop.spans if s.trace_id in wanted)
    assert store.get_traces([]) == []


def test_get_traces_looks_a_few_up_by_id_and_reads_many_by_their_ranges(
    shop: Shop, store: DuckDBStore
) -> None:
    """A few traces (a session's, spread over its hours) are read through the trace-id
    index (DuckDB's profile says so), more than the index reads by range: the same
    spans either way, in the same order."""
    wanted = [*shop.checkout_ids[:2], *shop.checkout_ids[-2:]]
    with statements() as ran:
        looked_up = store.get_traces(wanted)
    read, params = ran[-1]
    assert "Type: Index Scan" in str(store._fetch("EXPLAIN ANALYZE " + read, params)[0][1])
    with patch.object(trace_reads, "INDEX_LOOKUP_ROWS", 0):
        by_range = store.get_traces(wanted)
    assert len(looked_up) == sum(1 for s in shop.spans if s.trace_id in wanted) > 0
    assert looked_up == by_range
