"""Tail-latency causes and failure hotspots from a bounded sample rank as the full scan does.

The benchmark's shop (``bench/analysis_workload.py``) at a modest size: its checkouts
split into slow and usual ones, its traces into failed and succeeded. The store
answers from the rollups with a sample far smaller than the groups; the scan
(``store.scan``) labels by the exact percentile and reads every trace. The ranked
operations scoring above the noise, and the first attribute values, must be the same.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Final

import pytest

from threadline.server.aggregates import Split, Target, TimeWindow, TraceGroups
from threadline.server.analysis import sampling_error
from threadline.server.analysis.tail_latency import explain
from threadline.server.query import QueryService
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.windows import WindowRequest

BENCH: Final = Path(__file__).resolve().parents[3] / "bench"
SPANS: Final = 120_000
HOUR_NS: Final = 3600 * 1_000_000_000
# Far below the groups (about 1,200 checkouts, 120 of them slow; 6,000 traces): the
# sample, not the whole group, is what is read.
SAMPLE: Final = 60
EVERYTHING: Final = 1_000_000
TOP: Final = 3
# Scores below this share of the first are sampling noise, their order too.
NOISE: Final = 0.02
CHECKOUT: Final = Target("gateway", "POST /checkout")
# The three sampled answers the benchmark compares with the full scan.
SPLITS: Final = pytest.mark.parametrize(
    ("target", "split"),
    [(CHECKOUT, Split.SLOW), (Target(), Split.FAILED), (CHECKOUT, Split.FAILED)],
    ids=["slow checkouts", "failed traces", "failed checkouts"],
)


def _workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "analysis_workload", BENCH / "analysis_workload.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBStore, TimeWindow]]:
    end_ns = (time.time_ns() // 60_000_000_000) * 60_000_000_000
    store = DuckDBStore(tmp_path_factory.mktemp("sampled") / "spans.duckdb")
    try:
        batches = _workload().generate(
            SPANS, end_ns=end_ns, window_ns=HOUR_NS, sessions=2_000, batch_spans=10_000
        )
        for batch in batches:
            store.write(batch).result(timeout=60)
        yield store, TimeWindow(end_ns - HOUR_NS, end_ns)
    finally:
        store.close()


def ranked(groups: TraceGroups) -> tuple[list[tuple[str, str, float]], list[tuple[str, str]]]:
    """The first operations with their scores, and the first attribute value."""
    found = explain(groups, limit=TOP)
    operations = [(row.service, row.operation, row.growth_ns) for row in found.time_growth]
    if groups.split is Split.FAILED:
        operations = [(row.service, row.operation, row.score) for row in found.error_sources]
    return operations, [(row.key, row.value) for row in found.attributes[:1]]


def significant(operations: list[tuple[str, str, float]]) -> list[tuple[str, str]]:
    """The operations scoring at least ``NOISE`` of the first: below, an order is noise
    (a slow checkout's third operation grows by 0.2 ms where the first grows by 270)."""
    first = operations[0][2]
    return [(service, name) for service, name, score in operations if score >= NOISE * first]


@SPLITS
def test_a_sample_ranks_like_the_full_scan(
    shop: tuple[DuckDBStore, TimeWindow], target: Target, split: Split
) -> None:
    """The operations that matter, in order, and the first attribute value are those of
    every trace."""
    store, window = shop
    sampled = store.trace_groups(target, split, window, sample=SAMPLE)
    full = store.scan.trace_groups(target, split, window, sample=EVERYTHING)
    assert sampled.baseline_sample == SAMPLE < full.baseline_sample
    assert sampled.focus_sample <= SAMPLE < full.focus_sample or split is Split.FAILED
    operations, values = ranked(sampled)
    assert operations, "the planted cause was found"
    full_operations, full_values = ranked(full)
    expected = significant(full_operations)
    found = [(service, name) for service, name, _ in operations[: len(expected)]]
    assert (found, values) == (expected, full_values), (operations, full_operations)


Figures = list[tuple[tuple[str, str], float, float]]


def figures(groups: TraceGroups) -> tuple[Figures, Figures]:
    """Every ranked operation and attribute value with the figure it is ranked by and
    that figure's margin (lifts on a log scale, as their margins are)."""
    found = explain(groups, limit=1_000)
    operations = [((r.service, r.operation), r.growth_ns, r.margin_ns) for r in found.time_growth]
    if groups.split is Split.FAILED:
        operations = [((r.service, r.operation), r.score, r.margin) for r in found.error_sources]
    values = [((a.key, a.value), math.log(a.lift), a.log_lift_margin) for a in found.attributes]
    return operations, values


@SPLITS
def test_a_sample_parts_from_the_full_scan_only_at_ties_it_marks(
    shop: tuple[DuckDBStore, TimeWindow], target: Target, split: Split
) -> None:
    """Of the full scan's first five rows of each ranking, the sample holds no two the
    other way round unless it cannot tell them apart (its margins say a count over every
    trace may swap them), so it marks a tie rather than a finding. A sample this small
    may leave out a weak value the full count finds; it still finds the first."""
    store, window = shop
    sampled = store.trace_groups(target, split, window, sample=SAMPLE)
    full = store.scan.trace_groups(target, split, window, sample=EVERYTHING)
    mine, theirs = figures(sampled), figures(full)
    # Both answers reached data; every trace counted has no margin, a sample has one.
    assert mine[0]
    assert theirs[0]
    assert theirs[1]
    assert all(margin == 0 for ranking in theirs for _, _, margin in ranking)
    assert all(margin > 0 for _, _, margin in mine[0])
    for sampled_rows, full_rows in zip(mine, theirs, strict=True):
        first = [key for key, _, _ in full_rows[:5]]
        assert sampled_rows[0][0] == first[0]
        assert sampling_error.first_contradiction(sampled_rows, first) is None, (
            sampled_rows[:6],
            full_rows[:5],
        )


@pytest.mark.parametrize("walked", [3, 8])
def test_the_critical_path_walks_as_many_traces_as_asked(
    shop: tuple[DuckDBStore, TimeWindow], walked: int
) -> None:
    """``walked`` traces of each group are read whole and walked (or come with the paths
    the store walked when it kept them), and their paths still find where the slow
    checkouts spend their time."""
    store, window = shop
    query = QueryService(store, clock=lambda: window.end_ns)
    request = WindowRequest(length_ns=window.end_ns - window.start_ns, end_ns=window.end_ns)
    found = query.slow_requests(CHECKOUT, request, walked=walked)
    groups = found.groups
    assert (len(groups.focus_ids), len(groups.baseline_ids)) == (walked, walked)
    assert {span.trace_id for span in groups.sample_spans} | set(groups.path_times) == {
        *groups.focus_ids,
        *groups.baseline_ids,
    }
    assert found.measure == "critical_path"
    assert found.time_growth[0].focus_path_ns is not None
    default = query.slow_requests(CHECKOUT, request)
    assert len(default.groups.focus_ids) > walked
    top = found.time_growth[0]
    assert (top.service, top.operation) == (
        default.time_growth[0].service,
        default.time_growth[0].operation,
    )
