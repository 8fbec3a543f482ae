"""Slow traces kept apart in DuckDB (``kept_apart``): a trace whose root request is in
the tail of its operation is copied at the fold, and a slow split draws its focus sample
from the copies only when they hold every slow request of the window."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import duckdb
import pytest

from support.kept_apart import HOUR, MS, TRACES, in_share, slow, tail_request, write
from support.statements import statements
from threadline.server.aggregates import Split, Target, TraceGroups
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore, writer
from threadline.server.storage.duckdb.migrations import LATEST
from threadline.server.storage.duckdb.schema import FAILED_SPANS, SLOW_SPANS, TABLE

CHECKOUT: Final = Target("web", "GET /pay")


def trace_id(index: int) -> str:
    # Ids spread like real ones: a draw by hash of the first ids would be a draw by time.
    return hashlib.md5(f"trace-{index}".encode()).hexdigest()


def checkout(index: int) -> list[SpanRecord]:
    """The ``index``-th request of the hour (``tail_request``), every tenth slow."""
    return tail_request(trace_id(index), index)


def copied(store: DuckDBStore, table: str = SLOW_SPANS) -> set[str]:
    return {str(row[0]) for row in store._fetch(f"SELECT trace_id FROM {table}", [])}


def folded(
    path: Path, monkeypatch: pytest.MonkeyPatch, trace: Callable[[int], list[SpanRecord]]
) -> Iterator[DuckDBStore]:
    """A store at ``path`` holding an hour of ``trace(i)``, folded (and folding only when
    told)."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    opened = DuckDBStore(path)
    try:
        write(opened, [span for i in range(TRACES) for span in trace(i)])
        opened.compact_rollups()
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBStore]:
    """An hour of checkouts."""
    yield from folded(tmp_path / "spans.duckdb", monkeypatch, checkout)


def drawn_and_scanned(store: DuckDBStore, wanted: int) -> tuple[TraceGroups, TraceGroups]:
    """The slow split of the checkouts with ``wanted`` traces a group walked whole, drawn
    by the store and by a scan of the span table."""
    found = store.trace_groups(CHECKOUT, Split.SLOW, HOUR, sample=wanted, sample_ids=wanted)
    scanned = store.scan.trace_groups(CHECKOUT, Split.SLOW, HOUR, sample=wanted, sample_ids=wanted)
    assert found.threshold_ns == scanned.threshold_ns
    return found, scanned


def test_the_fold_copies_the_traces_of_slow_roots_and_not_the_fastest(
    store: DuckDBStore,
) -> None:
    """Apart from the failed traces' copies, which error hotspots read alone."""
    slowest = {trace_id(i) for i in range(TRACES) if slow(i)}
    fastest = {trace_id(i) for i in range(TRACES) if not slow(i) and i % 25 < 10}
    assert slowest <= copied(store)
    assert not fastest & copied(store)
    assert not slowest - in_share(slowest) & copied(store, FAILED_SPANS)


def test_the_slow_focus_is_drawn_from_the_copies_over_the_whole_window(
    store: DuckDBStore,
) -> None:
    """Slow traces are a tenth of the hour: from the copies, the focus sample is the first
    of them by hash over the whole hour (as a scan draws it), not the first within slices
    of the hour, and their whole spans come from the copies (or, for a trace whose path
    the fold kept, ``kept_paths``, its path's times)."""
    wanted = 20
    found, scanned = drawn_and_scanned(store, wanted)
    assert found.focus_traces == scanned.focus_traces == TRACES // 10
    assert len(found.focus_ids) == wanted
    assert sorted(found.focus_ids) == sorted(scanned.focus_ids)
    walked = [trace for trace in found.focus_ids if trace not in found.path_times]
    assert {(span.trace_id, span.span_id) for span in found.sample_spans} >= {
        (trace, span) for trace in walked for span in ("a1", "a2")
    }


def test_copies_missing_a_slow_request_leave_the_focus_to_the_slices(
    store: DuckDBStore,
) -> None:
    """A slow trace without a copy (folded while its operation's tail was slower, or
    before the store kept slow traces) is found all the same: the copies hold fewer slow
    requests than the rollups count, so the focus is drawn from the span table."""
    missing = trace_id(TRACES // 2)
    store._fetch(f"DELETE FROM {SLOW_SPANS} WHERE trace_id = ? RETURNING 1", [missing])
    assert missing not in copied(store), "the copy is gone"
    found, scanned = drawn_and_scanned(store, TRACES)
    assert found.focus_sample == scanned.focus_sample == TRACES // 10
    assert missing in found.focus_ids
    assert (found.operations, found.attributes) == (scanned.operations, scanned.attributes)


def test_a_target_that_is_not_always_a_root_is_drawn_from_the_slices(
    store: DuckDBStore,
) -> None:
    """payments charge is never a root: its slow requests' traces are copied, but the
    store cannot tell from the rollups that the copies hold them all, so it draws from
    the span table; the answer is the scan's."""
    target = Target("payments", "charge")
    found = store.trace_groups(target, Split.SLOW, HOUR, sample=TRACES)
    scanned = store.scan.trace_groups(target, Split.SLOW, HOUR, sample=TRACES)
    assert found.focus_sample == scanned.focus_sample > 0
    assert (found.operations, found.attributes) == (scanned.operations, scanned.attributes)


def test_the_upgrade_copies_the_slow_traces_of_a_file_from_before(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """Version 23: a file whose traces were folded before slow traces were kept apart
    gets the copies the folds would have made, and its slow split draws from them."""
    made = sorted(store._fetch(f"SELECT trace_id, span_id FROM {SLOW_SPANS}", []))
    assert made, "the folds copied slow traces"
    store.close()
    db = tmp_path / "spans.duckdb"
    with duckdb.connect(str(db)) as connection:
        connection.execute(f"DROP TABLE {SLOW_SPANS}")
        connection.execute("UPDATE threadline_schema SET version = 22 WHERE version = ?", [LATEST])
    upgraded = DuckDBStore(db)
    try:
        copies = upgraded._fetch(f"SELECT trace_id, span_id FROM {SLOW_SPANS}", [])
        assert sorted(copies) == made
        found, scanned = drawn_and_scanned(upgraded, 20)
        assert sorted(found.focus_ids) == sorted(scanned.focus_ids)
    finally:
        upgraded.close()


def spread_checkout(index: int) -> list[SpanRecord]:
    """As ``checkout``, but every fifth root takes 200 to 399 ms: a tail wide enough that
    the 85th and the 90th percentiles lie in different buckets, both within it."""
    spans = checkout(index)
    if index % 5 == 0:
        start = spans[0].start_ns
        took = (200 + (index * 7) % 200) * MS
        spans = [
            dataclasses.replace(spans[0], end_ns=start + took),
            dataclasses.replace(spans[1], end_ns=start + took - MS),
        ]
    return spans


@pytest.fixture
def spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBStore]:
    """An hour of checkouts with a wide tail."""
    yield from folded(tmp_path / "spread.duckdb", monkeypatch, spread_checkout)


def threshold_reads(store: DuckDBStore) -> tuple[list[str], TraceGroups]:
    """The tables the slow split's threshold read its buckets' spans from, and the split
    (checked against the scan's)."""
    with statements() as ran:
        found, scanned = drawn_and_scanned(store, 20)
    assert found.focus_traces == scanned.focus_traces > 0
    reads = [sql for sql, _ in ran if "AS bucket, duration_ns FROM" in sql]
    return [sql.split("AS bucket, duration_ns FROM ")[1].split()[0] for sql in reads], found


def test_the_threshold_is_read_among_the_copies_when_they_hold_its_buckets(
    spread: DuckDBStore,
) -> None:
    """The 90th percentile lies in buckets above the one the fold copied from, so every
    request in them is in the copies: the exact threshold is read there, not in the span
    table (``drawn_and_scanned`` checks it is the scan's)."""
    tables, _ = threshold_reads(spread)
    assert tables == [SLOW_SPANS]


def test_a_threshold_bucket_missing_a_copy_is_read_in_the_span_table(
    spread: DuckDBStore,
) -> None:
    """One of the threshold buckets' requests has no copy: the copies count fewer than
    the rollups, so that bucket is read in the span table, and the threshold is exact."""
    tables, found = threshold_reads(spread)
    assert found.threshold_ns is not None
    rows = spread._fetch(
        f"SELECT trace_id FROM {SLOW_SPANS} WHERE span_id = 'a1'"
        " ORDER BY abs(duration_ns - ?) LIMIT 1",
        [found.threshold_ns],
    )
    spread._fetch(f"DELETE FROM {SLOW_SPANS} WHERE trace_id = ? RETURNING 1", [rows[0][0]])
    tables, _ = threshold_reads(spread)
    assert tables[0] == SLOW_SPANS
    assert TABLE in tables[1:]
