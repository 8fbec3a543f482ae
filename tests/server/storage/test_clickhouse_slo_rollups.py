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
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from support.rollup_workload import (
    MINUTE,
    MS,
    T0,
    TRACES,
    WAIT_S,
    WINDOW,
    batches,
    slo_answers,
)
from threadline.server.aggregates import Split, Target, TraceGroups
from threadline.server.analysis import tail_latency
from threadline.server.batch import SpanBatch
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse import pair_rollups
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

TARGETS: Final = (Target(), Target("web"), Target("pay", "charge"), Target("mail"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """A DuckDB store and a chDB store holding the same spans."""
    directory: Path = tmp_path_factory.mktemp("agreement")
    duck = DuckDBStore(directory / "spans.duckdb")
    house = ClickHouseStore(StoreUrl(backend="chdb", path=directory / "chdb"))
    try:
        for batch in batches():
            for store in (duck, house):
                store.write(SpanBatch.from_records(batch)).result(timeout=WAIT_S)
        yield duck, house
    finally:
        duck.close()
        house.close()


def _groups(store: Store, target: Target, split: Split, sample: int) -> TraceGroups:
    return store.trace_groups(target, split, WINDOW, percentile=80, sample=sample, sample_ids=3)


def _without_sample(groups: TraceGroups) -> TraceGroups:
    # The sampled ids (and so their spans, or the paths a store kept of them) follow each
    # engine's hash; everything else must agree.
    return dataclasses.replace(
        groups, focus_ids=(), baseline_ids=(), sample_spans=(), path_times={}
    )


def test_slo_reads_agree(stores: tuple[Store, Store]) -> None:
    duck, house = stores
    answers = slo_answers(house)
    assert answers == slo_answers(duck)
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
    before = (slo_answers(house), house.propagation(WINDOW))
    groups = _without_sample(_groups(house, Target("web"), Split.SLOW, TRACES * 2))
    pair_rollups.backfill(house._connection, house._tables)
    assert (slo_answers(house), house.propagation(WINDOW)) == before
    assert _without_sample(_groups(house, Target("web"), Split.SLOW, TRACES * 2)) == groups


def test_deletions_keep_both_agreeing(stores: tuple[Store, Store]) -> None:
    """Tail sampling, erasure and retention subtract the same from both (runs last)."""
    duck, house = stores
    doomed = [f"{n + 1:032x}" for n in range(0, TRACES, 8)]
    assert house.delete_traces(doomed) == duck.delete_traces(doomed)
    assert house.erase_user(["nobody"]).erased_spans == 0
    cutoff = T0 + 6 * MINUTE + 30 * 1_000 * MS
    assert house.delete_older_than(cutoff) == duck.delete_older_than(cutoff)
    assert slo_answers(house) == slo_answers(duck)
    found, expected = house.propagation(WINDOW), duck.propagation(WINDOW)
    assert (found.entries, found.orphans) == (expected.entries, expected.orphans)
    counts = [(h.producer, h.consumer, h.messages, h.broken, h.linked) for h in found.message_hops]
    assert counts == [
        (h.producer, h.consumer, h.messages, h.broken, h.linked) for h in expected.message_hops
    ]
    for split in (Split.FAILED, Split.SLOW):
        found_groups = _without_sample(_groups(house, Target("web"), split, TRACES * 2))
        assert found_groups == _without_sample(_groups(duck, Target("web"), split, TRACES * 2))
