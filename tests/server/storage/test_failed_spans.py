"""The spans kept apart in DuckDB (``kept_apart``: failed traces and a share of all
traces by hash): kept at each fold, read by error hotspots together with what is not
folded yet, and deleted with the spans by every deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from support.kept_apart import HOUR, MS, T0, TRACES, S, in_share, write
from support.spans import payment_call, span_record
from threadline.server.aggregates import Split, Target, TraceGroups
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.storage.duckdb.schema import FAILED_SPANS


def trace_id(index: int) -> str:
    return f"{index:032x}"


def checkout(index: int, *, failed: bool, user: str | None = None) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT POST /charge → payments SERVER charge, failing
    there when ``failed``; one trace every six seconds."""
    return payment_call(trace_id(index), T0 + index * 6 * S, failed=failed, user=user)


def late_span(index: int, span_id: str, *, failed: bool) -> SpanRecord:
    """A payments request of trace ``index`` (a retried charge, called by web) arriving
    after its trace was folded."""
    start = T0 + index * 6 * S + 50 * MS
    status = {"status": StatusCode.ERROR} if failed else {}
    return span_record(
        trace_id(index),
        span_id,
        "a2",
        "payments",
        "charge",
        start,
        start + 10 * MS,
        kind=SpanKind.SERVER,
        **status,
    )


def copies(store: DuckDBStore) -> dict[str, set[str]]:
    """The span ids kept apart, per trace."""
    kept: dict[str, set[str]] = {}
    for trace, span in store._fetch(f"SELECT trace_id, span_id FROM {FAILED_SPANS}", []):
        kept.setdefault(str(trace), set()).add(str(span))
    return kept


@pytest.fixture
def store(duckdb_folding_when_told: DuckDBStore) -> DuckDBStore:
    return duckdb_folding_when_told


def test_a_failed_traces_spans_are_copied_when_folded_and_late_spans_join_them(
    store: DuckDBStore,
) -> None:
    """Only traces with an error span are copied, whole, at the fold; a late span joins
    its trace's copy at the next fold, and a late error copies its trace then."""
    write(store, [*checkout(1, failed=True), *checkout(2, failed=False)])
    assert copies(store) == {}, "nothing is copied before the fold"
    store.compact_rollups()
    assert copies(store) == {trace_id(1): {"a1", "a2", "a3"}}

    write(store, [late_span(1, "b1", failed=False), late_span(2, "b2", failed=True)])
    assert copies(store) == {trace_id(1): {"a1", "a2", "a3"}}
    store.compact_rollups()
    assert copies(store) == {
        trace_id(1): {"a1", "a2", "a3", "b1"},
        trace_id(2): {"a1", "a2", "a3", "b2"},
    }


def hotspots(store: DuckDBStore) -> tuple[object, ...]:
    """What error hotspots of the payments say, the sample holding every trace."""
    groups = store.trace_groups(Target("payments"), Split.FAILED, HOUR, sample=TRACES)
    assert groups.focus_sample > 0, "reached the failed traces"
    assert groups.baseline_sample > 0, "and the others"
    return (
        groups.focus_traces,
        groups.baseline_traces,
        groups.focus_sample,
        groups.baseline_sample,
        groups.operations,
        groups.attributes,
    )


def test_hotspots_count_failed_traces_not_folded_yet_as_after_the_fold(
    store: DuckDBStore,
) -> None:
    """Failed traces written since the last fold (new ones, and a folded trace whose
    late span failed) are in the focus sample before the fold as after it, and the
    counts equal those of a scan of the span table."""
    first = [span for i in range(TRACES // 2) for span in checkout(i, failed=i % 10 == 0)]
    write(store, first)
    store.compact_rollups()
    second = [span for i in range(TRACES // 2, TRACES) for span in checkout(i, failed=i % 10 == 0)]
    write(store, [*second, late_span(1, "b1", failed=True)])
    # Traces 1 and 300, 310, ... are failed but not folded: not copied yet.
    assert not {trace_id(1), trace_id(TRACES // 2)} & set(copies(store))

    unfolded = hotspots(store)
    groups = store.trace_groups(Target("payments"), Split.FAILED, HOUR, sample=TRACES)
    failed = {trace_id(i) for i in range(TRACES) if i % 10 == 0} | {trace_id(1)}
    assert groups.focus_sample == len(failed)
    store.compact_rollups()
    assert {trace_id(1), trace_id(TRACES // 2)} <= set(copies(store))
    assert hotspots(store) == unfolded
    scanned = store.scan.trace_groups(Target("payments"), Split.FAILED, HOUR, sample=TRACES)
    assert unfolded[4:] == (scanned.operations, scanned.attributes)
    assert unfolded[:2] == (scanned.focus_traces, scanned.baseline_traces)


def sampled_and_scanned(store: DuckDBStore, wanted: int) -> tuple[TraceGroups, TraceGroups]:
    """The payments' failed split with ``wanted`` traces a group, walked whole: drawn
    by the store, and by a scan of the span table."""
    found = store.trace_groups(
        Target("payments"), Split.FAILED, HOUR, sample=wanted, sample_ids=wanted
    )
    scanned = store.scan.trace_groups(
        Target("payments"), Split.FAILED, HOUR, sample=wanted, sample_ids=wanted
    )
    return found, scanned


# A sample this small is held by the share of the hour's 540 baseline traces: the
# rollups count at least 32 requests for each trace it needs.
SHARED_SAMPLE: Final = 10


def test_the_baseline_comes_from_the_share_over_the_whole_window(store: DuckDBStore) -> None:
    """The share of all traces kept apart holds enough of the hour's baseline, so the
    baseline sample is the first of those by hash over the whole hour, read from the
    copies: the same traces a scan samples, with their whole spans, and the same counts."""
    write(store, [span for i in range(TRACES) for span in checkout(i, failed=i % 10 == 0)])
    store.compact_rollups()
    shared = in_share(trace_id(i) for i in range(TRACES) if i % 10)
    assert len(shared) >= SHARED_SAMPLE, "the share holds enough baseline traces"
    wanted = SHARED_SAMPLE
    groups, scanned = sampled_and_scanned(store, wanted)
    assert len(groups.baseline_ids) == wanted
    assert sorted(groups.baseline_ids) == sorted(scanned.baseline_ids)
    assert set(groups.baseline_ids) <= shared
    assert (groups.operations, groups.attributes) == (scanned.operations, scanned.attributes)
    assert {(span.trace_id, span.span_id) for span in groups.sample_spans} >= {
        (trace, span) for trace in groups.baseline_ids for span in ("a1", "a2", "a3")
    }


def test_the_share_draws_traces_not_folded_yet_as_after_the_fold(store: DuckDBStore) -> None:
    """Traces of the share written since the last fold (not copied yet) are drawn for the
    baseline before the fold as after it."""
    write(store, [span for i in range(TRACES // 2) for span in checkout(i, failed=i % 10 == 0)])
    store.compact_rollups()
    later = range(TRACES // 2, TRACES)
    write(store, [span for i in later for span in checkout(i, failed=i % 10 == 0)])
    fresh = in_share(trace_id(i) for i in later if i % 10)
    assert fresh, "the later traces hold some of the share"
    assert not fresh & set(copies(store)), "not copied before the fold"

    def baseline() -> list[str]:
        groups = store.trace_groups(
            Target("payments"), Split.FAILED, HOUR, sample=SHARED_SAMPLE, sample_ids=SHARED_SAMPLE
        )
        assert len(groups.baseline_ids) == SHARED_SAMPLE
        return sorted(groups.baseline_ids)

    unfolded = baseline()
    assert set(unfolded) & fresh, "the sample holds shared traces not folded yet"
    store.compact_rollups()
    assert fresh <= set(copies(store))
    assert baseline() == unfolded


def test_a_share_too_small_leaves_the_baseline_to_the_slices(store: DuckDBStore) -> None:
    """A sample larger than the share can hold (the rollups count fewer than 32 requests
    for each trace it needs) is drawn from slices of the span table, whole."""
    write(store, [span for i in range(TRACES) for span in checkout(i, failed=i % 10 == 0)])
    store.compact_rollups()
    wanted = 40
    groups = store.trace_groups(
        Target("payments"), Split.FAILED, HOUR, sample=wanted, sample_ids=wanted
    )
    assert len(groups.baseline_ids) == wanted
    assert not set(groups.baseline_ids) <= in_share(groups.baseline_ids), "not the share alone"


def test_the_focus_sample_is_drawn_from_the_whole_window(store: DuckDBStore) -> None:
    """Failed traces kept apart are few, so the focus sample is the first of them by hash
    over the whole hour, not over slices of it: the same traces a scan would sample."""
    write(store, [span for i in range(TRACES) for span in checkout(i, failed=i % 10 == 0)])
    store.compact_rollups()
    wanted = 20
    groups, scanned = sampled_and_scanned(store, wanted)
    assert len(groups.focus_ids) == wanted
    assert sorted(groups.focus_ids) == sorted(scanned.focus_ids)
    # Their whole spans, for analyses walking the trace, come from the copies.
    assert {span.trace_id for span in groups.sample_spans} >= set(groups.focus_ids)
    assert {(span.trace_id, span.span_id) for span in groups.sample_spans} >= {
        (trace, span) for trace in groups.focus_ids for span in ("a1", "a2", "a3")
    }


@pytest.mark.parametrize("deletion", ["retention", "tail sampling", "erasure"])
def test_every_deletion_of_spans_deletes_their_copies(
    store: DuckDBStore, tmp_path: Path, deletion: str
) -> None:
    """Retention, tail sampling and erasure leave no copy of what they delete, and keep
    the copies of the rest; after an erasure no byte of the user is left in the file."""
    records = [
        span
        for i in range(40)
        for span in checkout(i, failed=i % 2 == 0, user="dave-9q" if i == 30 else f"u{i}")
    ]
    write(store, records)
    store.compact_rollups()
    failed = {trace_id(i) for i in range(0, 40, 2)}
    failed |= in_share(trace_id(i) for i in range(40))  # kept apart too
    assert set(copies(store)) == failed, "reached the copies"
    if deletion == "retention":
        store.delete_older_than(T0 + 10 * 6 * S)  # traces 0 to 9
        gone = {trace_id(i) for i in range(10)}
    elif deletion == "tail sampling":
        gone = {trace_id(4), trace_id(6)}
        store.delete_traces(sorted(gone))
    else:
        store.erase_user(["dave-9q"])
        gone = {trace_id(30)}
    assert set(copies(store)) == failed - gone
    if deletion == "erasure":
        store.close()
        data = (tmp_path / "spans.duckdb").read_bytes()
        assert b"dave-9q" not in data


def test_an_hour_of_failed_traces_alone_is_read_from_the_copies(store: DuckDBStore) -> None:
    """With no baseline trace (every sampled trace read from the copies, the span table's
    read left empty), the answer counts every failed trace, as a scan does, and walks
    each of them whole."""
    write(store, [span for i in range(40) for span in checkout(i, failed=True)])
    store.compact_rollups()
    groups = store.trace_groups(Target("payments"), Split.FAILED, HOUR, sample_ids=40)
    scanned = store.scan.trace_groups(Target("payments"), Split.FAILED, HOUR, sample_ids=40)
    assert (groups.focus_sample, groups.baseline_sample) == (40, 0)
    assert groups.operations == scanned.operations
    assert len(groups.sample_spans) == 3 * 40
