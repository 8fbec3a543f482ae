"""Searches with attribute pairs over folded summaries, found by probing traces in order.

A page of traces carrying an attribute value is found by checking the summaries' traces
in the page's order a few at a time (``span_probe``) and, when the value is too rare
among them, by reading the window's spans once. Either way the page is the scan's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final
from unittest.mock import patch

import pytest

from support.spans import span_record
from support.statements import statements
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, TraceCursor, TraceOrder, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore, span_probe
from threadline.server.storage.duckdb.sql import INDEX_LOOKUP_ROWS

MS: Final = 1_000_000
T0: Final = 1_790_000_000 * 1_000_000_000
TRACES: Final = 240
ORDERS: Final[tuple[TraceOrder, ...]] = ("recent", "oldest", "slowest", "fastest")
# The statement of the one read of the window's spans (``summary_reads.search_traces``).
WINDOW_READ: Final = "SELECT list(DISTINCT trace_id) FROM (SELECT trace_id FROM spans WHERE"
HOSTILE: Final = "'); DROP TABLE spans; -- \"<script>alert(1)</script>\\\u0007"


def trace(index: int) -> list[SpanRecord]:
    """A root and two children; the slower the trace, the likelier its payment is slowpay.

    Durations repeat (ties broken by trace id); every 40th trace has a rare coupon, on the
    root; some traces carry both providers, each on a span of its own; every 9th a note
    written to break the SQL, the JSON and the page it is shown on; every 5th a journey id,
    on a child span.
    """
    trace_id = f"{index + 1:032x}"
    start = T0 + index * 700 * MS
    duration = (1 + index % 60) * 10 * MS
    provider = "slowpay" if index % 60 >= 45 or index % 7 == 0 else "okpay"
    root_attributes: dict[str, str] = {"coupon": "RARE"} if index % 40 == 3 else {}
    if index % 9 == 0:
        root_attributes["note"] = HOSTILE
    second = "okpay" if index % 11 == 0 else provider
    return [
        span_record(trace_id, "r", None, "web", "POST /buy", start, start + duration,
                    attributes=root_attributes),
        span_record(trace_id, "a", "r", "pay", "charge", start + MS, start + 2 * MS,
                    attributes={"payment.provider": provider}),
        span_record(trace_id, "b", "r", "pay", "refund", start + 3 * MS, start + 4 * MS,
                    attributes={"payment.provider": second},
                    journey_id="checkout" if index % 5 == 0 else None),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    path = Path(tmp_path_factory.mktemp("probe")) / "spans.duckdb"
    store = DuckDBStore(path)
    spans = [span for index in range(TRACES) for span in trace(index)]
    store.write(SpanBatch.from_records(spans)).result(timeout=30)
    store.compact_rollups()
    yield store
    store.close()


ATTRIBUTES: Final = [
    (("payment.provider", "slowpay"),),
    (("payment.provider", "okpay"),),
    (("coupon", "RARE"),),
    (("payment.provider", "slowpay"), ("payment.provider", "okpay")),
    (("payment.provider", "nopay"),),
    (("note", HOSTILE),),
]
ABSENT: Final = (("payment.provider", "nopay"),)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("attributes", ATTRIBUTES)
def test_pages_with_attributes_are_the_scans(
    store: DuckDBStore, order: TraceOrder, attributes: tuple[tuple[str, str], ...]
) -> None:
    """Every order, common, rare, paired and absent values, at several depths: probed or
    read from the window, the page is the scan's."""
    for limit, offset in ((1, 0), (5, 0), (20, 0), (20, 30), (7, 100), (150, 0)):
        query = TraceQuery(attributes=attributes, order=order, limit=limit, offset=offset)
        expected = store.scan.search_traces(query)
        if attributes == ATTRIBUTES[0] and offset == 0 and limit <= 20:
            assert len(expected) == limit  # the workload reaches a full page
        if attributes != ABSENT and offset == 0:
            assert expected  # every value but the absent one is found
        assert store.search_traces(query) == expected, (limit, offset)


@pytest.mark.parametrize("order", ORDERS)
def test_pages_of_a_journey_id_are_the_scans(store: DuckDBStore, order: TraceOrder) -> None:
    """The journey id is on spans too: with an attribute or alone, probed, the scan's page."""
    for attributes in ((), (("payment.provider", "slowpay"),)):
        for limit, offset in ((5, 0), (20, 0), (4, 7)):
            query = TraceQuery(
                journey_id="checkout",
                attributes=attributes,
                order=order,
                limit=limit,
                offset=offset,
            )
            expected = store.scan.search_traces(query)
            if offset == 0:
                assert expected
            assert store.search_traces(query) == expected, (attributes, limit, offset)


@pytest.mark.parametrize("lookup_spans", [INDEX_LOOKUP_ROWS, 0])
@pytest.mark.parametrize("order", ORDERS)
def test_small_probes_still_give_the_scans_pages(
    store: DuckDBStore, order: TraceOrder, lookup_spans: int
) -> None:
    """Probes of one or two traces at a time, bounded low: several probes, estimates
    falling short and falls back to the window's read, each page still the scan's;
    candidates spread over the window looked up by id, and (none looked up) read by
    their start ranges."""
    small = {"FIRST_TOGETHER": 2, "MOST_TOGETHER": 40, "FIRST_SPREAD": 1, "MOST_SPREAD": 12}
    small["INDEX_LOOKUP_ROWS"] = lookup_spans
    with patch.multiple(span_probe, **small):  # type: ignore[arg-type]
        for attributes in ATTRIBUTES:
            for limit, offset in ((1, 0), (3, 0), (4, 5)):
                query = TraceQuery(attributes=attributes, order=order, limit=limit, offset=offset)
                assert store.search_traces(query) == store.scan.search_traces(query)


@pytest.mark.parametrize("order", ORDERS)
def test_cursor_pages_with_an_attribute_follow_each_other(
    store: DuckDBStore, order: TraceOrder
) -> None:
    """Page after page by cursor, the attribute's traces come once each, in the scan's
    order, to the last."""
    attributes = (("payment.provider", "okpay"),)
    everything = store.scan.search_traces(
        TraceQuery(attributes=attributes, order=order, limit=1000)
    )
    assert len(everything) > 100
    paged: list[str] = []
    after = None
    while True:
        page = store.search_traces(
            TraceQuery(attributes=attributes, order=order, limit=9, after=after)
        )
        paged.extend(summary.trace_id for summary in page)
        if len(page) < 9:
            break
        last = page[-1]
        key = last.start_ns if order in ("recent", "oldest") else last.duration_ns
        after = TraceCursor(order=order, key=key, trace_id=last.trace_id)
    assert paged == [summary.trace_id for summary in everything]


def test_a_value_that_goes_with_the_order_reads_only_the_candidates_spans(
    store: DuckDBStore,
) -> None:
    """The slowest traces with the slow provider: the first probe fills the page, and the
    window's spans are not read; a rare value is read from the window, the same page as
    the scan's either way."""
    slow = TraceQuery(attributes=(("payment.provider", "slowpay"),), order="slowest", limit=20)
    with statements() as ran:
        found = store.search_traces(slow)
    assert len(found) == 20
    assert found == store.scan.search_traces(slow)
    assert ran
    assert not any(WINDOW_READ in sql for sql, _ in ran)
    assert sum("HAVING bool_or(" in sql for sql, _ in ran) == 1  # one probe

    rare = TraceQuery(attributes=(("coupon", "RARE"),), order="slowest", limit=20)
    with statements() as ran:
        found = store.search_traces(rare)
    assert found
    assert found == store.scan.search_traces(rare)
    assert any(WINDOW_READ in sql for sql, _ in ran)


def test_the_slowest_traces_are_looked_up_through_the_trace_id_index(
    store: DuckDBStore,
) -> None:
    """The slowest traces are the longest, so the start ranges of a probe's candidates
    would cover most of the window: their spans are read through the span table's
    trace-id index instead (DuckDB's profile says so), and the page is the scan's. Start
    order reads the candidates where they start, which lie together."""
    plans: dict[TraceOrder, str] = {}
    for order in ("slowest", "recent"):
        query = TraceQuery(attributes=(("payment.provider", "slowpay"),), order=order, limit=20)
        with statements() as ran:
            found = store.search_traces(query)
        assert len(found) == 20
        assert found == store.scan.search_traces(query)
        ((probe, params),) = [(sql, params) for sql, params in ran if "HAVING bool_or(" in sql]
        plans[order] = str(store._fetch("EXPLAIN ANALYZE " + probe, params)[0][1])
    assert "Type: Index Scan" in plans["slowest"]
    assert "Type: Sequential Scan" in plans["recent"]


def test_unfolded_traces_are_searched_from_the_window(tmp_path: Path) -> None:
    """Summary rows not folded yet are not probed: their pages come from the window's read."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        spans = [span for index in range(60) for span in trace(index)]
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        query = TraceQuery(attributes=(("payment.provider", "slowpay"),), order="slowest")
        with statements() as ran:
            found = store.search_traces(query)
        assert found
        assert found == store.scan.search_traces(query)
        assert any(WINDOW_READ in sql for sql, _ in ran)
    finally:
        store.close()


def test_a_number_is_found_as_its_text_on_every_path(tmp_path: Path) -> None:
    """An integer searched as text (a status code) finds the spans whose value reads as
    that text — the integer and the string — and not those whose JSON only contains its
    digits (1500, 500.0, a timestamp): probed, read from the window, and by scan."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    values: list[object] = [500, "500", 1500, 500.0, -500, "x500", 200, 1_790_000_500]
    spans = [
        span_record(f"{n + 1:032x}", "r", None, "web", "GET /", T0 + n * MS, T0 + (n + 2) * MS,
                    attributes={"http.response.status_code": value})
        for n, value in enumerate(values * 5)
    ]  # fmt: skip
    expected_500 = {
        s.trace_id for s in spans if str(s.attributes["http.response.status_code"]) == "500"
    }
    expected_minus = {
        s.trace_id for s in spans if str(s.attributes["http.response.status_code"]) == "-500"
    }
    try:
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        for folded in (False, True):
            if folded:
                store.compact_rollups()
            for text, expected in (("500", expected_500), ("-500", expected_minus)):
                assert len(expected) == (10 if text == "500" else 5)
                for order in ORDERS:
                    query = TraceQuery(
                        attributes=(("http.response.status_code", text),), order=order, limit=100
                    )
                    found = {summary.trace_id for summary in store.search_traces(query)}
                    assert found == expected, (folded, text, order)
                    scanned = {summary.trace_id for summary in store.scan.search_traces(query)}
                    assert scanned == expected
    finally:
        store.close()


def test_a_pair_is_found_on_the_resource_or_the_span_on_every_path(tmp_path: Path) -> None:
    """A pair is the span's when its own attributes or its resource carry it: a search
    finds the traces whose spans carry it either way (and not those whose other document
    holds only the value, under another key), probed, read from the window, and by scan."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    spans = []
    for n in range(60):
        own = {"region": "eu"} if n % 5 == 0 else {"zone": "eu"} if n % 5 == 1 else {}
        resource = {"region": "eu"} if n % 3 == 0 else {"region": "us", "zone": "eu"}
        spans.append(
            span_record(f"{n + 1:032x}", "r", None, "web", "GET /", T0 + n * MS,
                        T0 + (n + 1 + n % 7) * MS, attributes=own, resource=resource)
        )  # fmt: skip
    expected = {
        s.trace_id for s in spans if "eu" in (s.attributes.get("region"), s.resource["region"])
    }
    assert 0 < len(expected) < len(spans)
    try:
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        for folded in (False, True):
            if folded:
                store.compact_rollups()
            for order in ORDERS:
                for limit in (3, 100):
                    query = TraceQuery(attributes=(("region", "eu"),), order=order, limit=limit)
                    found = [summary.trace_id for summary in store.search_traces(query)]
                    assert found == [s.trace_id for s in store.scan.search_traces(query)]
                    assert set(found) <= expected
                    assert len(found) == min(limit, len(expected)), (folded, order, limit)
    finally:
        store.close()
