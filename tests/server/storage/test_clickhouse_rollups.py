"""The ClickHouse rollups against DuckDB's: one moderate workload, the same answers.

A few hundred traces over twenty minutes (calls, retries, failures, a slow shard,
synthetic journeys, sessions, message hops broken and linked, orphans and lost
contexts), written to a DuckDB file and a chDB store in the same shuffled batches,
children often before their parents. Trace groups, propagation health and every SLO
read must agree: counts, thresholds and examples exactly, and what the groups hold
exactly when the sample holds every trace. A bounded sample (ClickHouse draws it by
``cityHash64``, DuckDB by ``hash``) must rank the causes as the full scan does.
Deletions must leave both agreeing, and a store whose rollups are rebuilt from its
spans (the schema version 2 step) must answer as before.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.spans import span_record
from threadline.conventions import MESSAGING_DESTINATION, MESSAGING_MESSAGE_ID
from threadline.server.aggregates import Split, Target, TimeWindow, TraceGroups
from threadline.server.analysis import tail_latency
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanLink, SpanRecord, StatusCode
from threadline.server.slo_queries import IndicatorQuery
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse import pair_rollups
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import Indicator
from threadline.store_url import StoreUrl

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE  # a whole minute
TRACES: Final = 300
WINDOW: Final = TimeWindow(T0, T0 + 20 * MINUTE)
NOW: Final = T0 + 21 * MINUTE
WINDOWS: Final = (5 * MINUTE, 30 * MINUTE, 60 * MINUTE)
WAIT_S: Final = 60.0


def _trace(n: int) -> list[SpanRecord]:
    """web GET /checkout → CLIENT → pay charge → db query; the variations by ``n``."""
    trace = f"{n + 1:032x}"
    start = T0 + (n * 20 * MINUTE) // TRACES + n * MS
    slow, failed = n % 7 == 0, n % 11 == 0
    marked = {"journey.synthetic": "true"} if n % 13 == 0 else {}
    session = {"session_id": f"s{n % 40}"} if n % 3 else {}
    db_ms = 400 + n % 9 if slow else 20 + n % 5
    spans = [
        span_record(
            trace,
            "a1",
            None,
            "web",
            "GET /checkout",
            start,
            start + (db_ms + 40) * MS,
            attributes={**marked, "http.route": "/checkout"},
            **session,
        ),
        span_record(
            trace,
            "a2",
            "a1",
            "web",
            "POST /pay",
            start + MS,
            start + (db_ms + 30) * MS,
            attributes={**marked, **({"http.request.resend_count": 1} if n % 5 == 1 else {})},
            **session,
        ),
        span_record(
            trace,
            "a3",
            "a2",
            "pay",
            "charge",
            start + 2 * MS,
            start + (db_ms + 20) * MS,
            kind=SpanKind.SERVER,
            attributes={**marked, "region": "eu" if failed else f"r{n % 3}"},
            **({"status": StatusCode.ERROR} if failed else {}),
        ),
        span_record(
            trace,
            "a4",
            "a3",
            "pay",
            "db query",
            start + 3 * MS,
            start + (db_ms + 3) * MS,
            kind=SpanKind.INTERNAL,
            attributes={**marked, "db.shard": "7" if slow else str(n % 6)},
        ),
    ]
    if n % 4 == 0:  # a message to mail: same trace, another one linked, or one broken
        message = {MESSAGING_MESSAGE_ID: f"m{n}", MESSAGING_DESTINATION: "mail"}
        spans.append(
            span_record(
                trace,
                "p1",
                "a1",
                "web",
                "publish",
                start + 4 * MS,
                start + 5 * MS,
                kind=SpanKind.PRODUCER,
                attributes=message,
            )
        )
        other = f"{n + 1:016x}{'c' * 16}"
        consumer_trace, parent, links = {
            0: (trace, "p1", ()),
            1: (other, None, (SpanLink(trace, "p1"),)),
        }.get(n // 4 % 3, (other, None, ()))
        spans.append(
            span_record(
                consumer_trace,
                "c1",
                parent,
                "mail",
                "send",
                start + 9 * MS,
                start + 19 * MS,
                kind=SpanKind.CONSUMER,
                attributes=message,
                links=links,
            )
        )
    if n % 17 == 0:  # a span whose parent never arrives
        spans.append(span_record(trace, "o1", "gone", "web", "render", start, start + MS))
    if n % 19 == 0:  # payments entered with no parent: the caller's context was lost
        lost = f"{n + 1:016x}{'d' * 16}"
        spans.append(
            span_record(
                lost, "l1", None, "pay", "charge", start, start + 30 * MS, kind=SpanKind.SERVER
            )
        )
    return spans


def _batches() -> list[list[SpanRecord]]:
    spans = [span for n in range(TRACES) for span in _trace(n)]
    random.Random(15).shuffle(spans)
    return [spans[i : i + 97] for i in range(0, len(spans), 97)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """A DuckDB store and a chDB store holding the same spans."""
    directory: Path = tmp_path_factory.mktemp("agreement")
    duck = DuckDBStore(directory / "spans.duckdb")
    house = ClickHouseStore(StoreUrl(backend="chdb", path=directory / "chdb"))
    try:
        for batch in _batches():
            for store in (duck, house):
                store.write(SpanBatch.from_records(batch)).result(timeout=WAIT_S)
        yield duck, house
    finally:
        duck.close()
        house.close()


QUERIES: Final = (
    IndicatorQuery(Indicator.ERRORS, "web", "GET /checkout"),
    IndicatorQuery(Indicator.ERRORS, "pay", include_synthetic=True),
    IndicatorQuery(Indicator.LATENCY, "web", "GET /checkout", threshold_ns=300 * MS),
    IndicatorQuery(Indicator.LATENCY, "pay", "charge", threshold_ns=100 * MS),
    IndicatorQuery(Indicator.EDGE, "web", callee="pay"),
    IndicatorQuery(Indicator.EDGE, "web", callee="pay", threshold_ns=200 * MS),
    IndicatorQuery(Indicator.EDGE, "web", callee="mail", include_synthetic=True),
    IndicatorQuery(Indicator.JOURNEY, "web", "GET /checkout"),
    IndicatorQuery(Indicator.JOURNEY, "pay"),
    IndicatorQuery(Indicator.JOURNEY, "pay", include_synthetic=True),
    # A funnel step: journeys that checked out once and came back to check out again.
    IndicatorQuery(Indicator.JOURNEY, "web", "GET /checkout", reaches="GET /checkout"),
)
TARGETS: Final = (Target(), Target("web"), Target("pay", "charge"), Target("mail"))


def _slo_answers(store: Store) -> list[object]:
    answers: list[object] = []
    for query in QUERIES:
        answers.append(store.slo_counts(query, NOW, WINDOWS))
        answers.append(store.slo_examples(query, WINDOW, limit=7))
    answers.append(store.retry_counts("web", "pay", NOW, WINDOWS))
    return answers


def _groups(store: Store, target: Target, split: Split, sample: int) -> TraceGroups:
    return store.trace_groups(target, split, WINDOW, percentile=80, sample=sample, sample_ids=3)


def _without_sample(groups: TraceGroups) -> TraceGroups:
    # The sampled ids follow each engine's hash; everything else must agree.
    return dataclasses.replace(groups, focus_ids=(), baseline_ids=())


def test_slo_reads_agree(stores: tuple[Store, Store]) -> None:
    duck, house = stores
    answers = _slo_answers(house)
    assert answers == _slo_answers(duck)
    assert answers[0][-1].total > 200  # the workload reached the reads


def test_propagation_agrees(stores: tuple[Store, Store]) -> None:
    duck, house = stores
    found = house.propagation(WINDOW)
    assert found == duck.propagation(WINDOW)
    assert found.orphans
    assert found.message_hops
    assert any(e.unparented for e in found.entries)


@pytest.mark.parametrize("split", [Split.FAILED, Split.SLOW])
def test_trace_groups_agree_over_every_trace(stores: tuple[Store, Store], split: Split) -> None:
    """With a sample as large as the groups, what they hold is the same on both."""
    duck, house = stores
    for target in TARGETS:
        found = _without_sample(_groups(house, target, split, TRACES * 2))
        assert found == _without_sample(_groups(duck, target, split, TRACES * 2)), target


@pytest.mark.parametrize(
    ("target", "split", "cause", "value"),
    [
        (Target("pay", "charge"), Split.FAILED, ("pay", "charge"), ("region", "eu")),
        (Target("web", "GET /checkout"), Split.SLOW, ("pay", "db query"), ("db.shard", "7")),
    ],
)
def test_a_bounded_sample_ranks_like_the_full_scan(
    stores: tuple[Store, Store],
    target: Target,
    split: Split,
    cause: tuple[str, str],
    value: tuple[str, str],
) -> None:
    """Sixty traces per group name the same first cause and value as every trace does."""
    duck, house = stores
    full = tail_latency.explain(_groups(duck, target, split, TRACES * 2))
    sampled = tail_latency.explain(_groups(house, target, split, 60))
    assert sampled.groups.baseline_sample == 60 < sampled.groups.baseline_traces
    ranked = sampled.error_sources if split is Split.FAILED else sampled.time_growth
    expected = full.error_sources if split is Split.FAILED else full.time_growth
    assert (
        [(r.service, r.operation) for r in ranked[:1]]
        == [(r.service, r.operation) for r in expected[:1]]
        == [cause]
    )
    assert (
        [(a.key, a.value) for a in sampled.attributes[:1]]
        == [(a.key, a.value) for a in full.attributes[:1]]
        == [value]
    )


def test_rebuilt_rollups_answer_as_before(stores: tuple[Store, Store]) -> None:
    """The schema version 2 step rebuilds every table from the spans: same answers."""
    _, house = stores
    assert isinstance(house, ClickHouseStore)
    before = (_slo_answers(house), house.propagation(WINDOW))
    groups = _without_sample(_groups(house, Target("web"), Split.SLOW, TRACES * 2))
    pair_rollups.backfill(house._connection, house._tables)
    assert (_slo_answers(house), house.propagation(WINDOW)) == before
    assert _without_sample(_groups(house, Target("web"), Split.SLOW, TRACES * 2)) == groups


def test_deletions_keep_both_agreeing(stores: tuple[Store, Store]) -> None:
    """Tail sampling, erasure and retention subtract the same from both (runs last)."""
    duck, house = stores
    doomed = [f"{n + 1:032x}" for n in range(0, TRACES, 8)]
    assert house.delete_traces(doomed) == duck.delete_traces(doomed)
    assert house.erase_user(["nobody"]).erased_spans == 0
    cutoff = T0 + 6 * MINUTE + 30 * 1_000 * MS
    assert house.delete_older_than(cutoff) == duck.delete_older_than(cutoff)
    assert _slo_answers(house) == _slo_answers(duck)
    found, expected = house.propagation(WINDOW), duck.propagation(WINDOW)
    assert (found.entries, found.orphans) == (expected.entries, expected.orphans)
    counts = [(h.producer, h.consumer, h.messages, h.broken, h.linked) for h in found.message_hops]
    assert counts == [
        (h.producer, h.consumer, h.messages, h.broken, h.linked) for h in expected.message_hops
    ]
    for split in (Split.FAILED, Split.SLOW):
        found_groups = _without_sample(_groups(house, Target("web"), split, TRACES * 2))
        assert found_groups == _without_sample(_groups(duck, Target("web"), split, TRACES * 2))
