"""Request paths kept for a hash share of the copied traces (``kept_paths``): the fold
walks each copied trace of the share as a read would, a read by the critical path takes
those walks instead of the traces' spans and answers the same, a late span has its
trace walked again, and every delete of spans deletes its traces' paths.

The shares are widened to half the hash range here, so that an hour of a few hundred
traces has many traces in them (at the store's shares, a sixty-fourth and a 512th, it
would have one or two)."""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import duckdb
import pytest

from support.kept_apart import HOUR, MS, T0, S, slow, tail_request, write
from support.spans import span_record
from threadline.server.aggregates import Split, Target
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.request_paths import path_time, request_path
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.query import QueryService
from threadline.server.storage.duckdb import DuckDBStore, kept_paths, writer
from threadline.server.storage.duckdb.schema import FAILED_SPANS, REQUEST_PATHS, SLOW_SPANS
from threadline.server.windows import WindowRequest

CHECKOUT: Final = Target("web", "GET /pay")
TRACES: Final = 300
# Half the hash range: the share a test can see many traces of.
SHARE: Final = 2
USER: Final = "erin-7k"


def trace_id(index: int) -> str:
    # Ids spread like real ones: a share by hash is then a share of the hour.
    return hashlib.md5(f"kept-{index}".encode()).hexdigest()


def checkout(index: int) -> list[SpanRecord]:
    """The ``index``-th request of the hour: every tenth slow, every seventh failing, one
    of those by ``USER`` (``users_request``)."""
    fields: dict[str, object] = {"status": StatusCode.ERROR} if index % 7 == 0 else {}
    if index == users_request():
        fields |= {"user_id": USER, "session_id": f"s-{USER}"}
    return tail_request(trace_id(index), index, **fields)


@functools.cache
def users_request() -> int:
    """``USER``'s request: a failing one in the share, so it has a kept path."""
    return next(i for i in range(0, TRACES, 7) if in_share({trace_id(i)}))


def in_share(trace_ids: set[str]) -> set[str]:
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT t FROM unnest(?::VARCHAR[]) AS ids(t) WHERE hash(t) < ?::UBIGINT",
            [sorted(trace_ids), 2**64 // SHARE],
        ).fetchall()
    return {str(row[0]) for row in rows}


def kept(store: DuckDBStore) -> dict[str, dict[tuple[str, str], int]]:
    """The kept paths of the web GET /pay requests, per trace."""
    paths: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for trace, service, operation, own in store._fetch(
        f"SELECT trace_id, service, operation, own_ns FROM {REQUEST_PATHS}"
        " WHERE target_service = ? AND target_operation = ?",
        [CHECKOUT.service, CHECKOUT.operation],
    ):
        key = (str(service), str(operation))
        assert key not in paths[str(trace)], f"{trace} has {key} twice"
        paths[str(trace)][key] = int(own)
    return dict(paths)


def copied(store: DuckDBStore, table: str) -> set[str]:
    return {str(row[0]) for row in store._fetch(f"SELECT DISTINCT trace_id FROM {table}", [])}


def walked(store: DuckDBStore, trace: str) -> dict[tuple[str, str], int]:
    """The path's times a read walks from the trace's stored spans."""
    path = request_path(fix_up(store.get_trace(trace)).tree, CHECKOUT)
    assert path is not None
    return path_time(path)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBStore]:
    """An hour of checkouts, folded, with half the hash range walked."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    monkeypatch.setattr(kept_paths, "SLOW_SHARE", SHARE)
    monkeypatch.setattr(kept_paths, "OTHER_SHARE", SHARE)
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        write(opened, [span for i in range(TRACES) for span in checkout(i)])
        opened.compact_rollups()
        yield opened
    finally:
        opened.close()


def test_the_fold_keeps_the_walk_of_every_copied_trace_in_the_share(
    store: DuckDBStore,
) -> None:
    """Slow, failed and shared copies alike; none of a trace outside the share."""
    copies = copied(store, SLOW_SPANS) | copied(store, FAILED_SPANS)
    expected = in_share(copies)
    assert {trace_id(i) for i in range(TRACES) if slow(i)} & expected, "reached slow copies"
    assert set(kept(store)) == expected
    for trace, times in kept(store).items():
        assert times == walked(store, trace), trace


def test_tail_causes_read_the_kept_paths_and_answer_as_walking_every_trace(
    store: DuckDBStore,
) -> None:
    """The walked traces with a kept path come without their spans; the ranking by the
    critical path is the one walking all of them gives."""
    groups = store.trace_groups(CHECKOUT, Split.SLOW, HOUR, sample=40, sample_ids=20)
    walked_ids = {*groups.focus_ids, *groups.baseline_ids}
    assert groups.path_times, "some walked traces have kept paths"
    assert set(groups.path_times) < walked_ids
    assert not {span.trace_id for span in groups.sample_spans} & set(groups.path_times)
    for trace, times in groups.path_times.items():
        assert times == walked(store, trace), trace

    query = QueryService(store, clock=lambda: HOUR.end_ns)
    request = WindowRequest(length_ns=HOUR.end_ns - HOUR.start_ns, end_ns=HOUR.end_ns)
    with_kept = query.slow_requests(CHECKOUT, request, walked=20)
    store._run(f"DELETE FROM {REQUEST_PATHS}", [], "forgetting the kept paths")
    walking_all = query.slow_requests(CHECKOUT, request, walked=20)
    assert not store.trace_groups(CHECKOUT, Split.SLOW, HOUR, sample_ids=20).path_times
    assert with_kept.time_growth, "ranked something"
    assert with_kept.time_growth == walking_all.time_growth
    assert with_kept.walked == walking_all.walked


def test_a_late_span_has_its_trace_walked_again(store: DuckDBStore) -> None:
    """A call the root waited on, arriving after its trace was folded, is on the kept
    path after the next fold."""
    trace = next(t for t in (trace_id(i) for i in range(TRACES)) if t in kept(store))
    index = next(i for i in range(TRACES) if trace_id(i) == trace)
    start = T0 + index * 6 * S
    root_end = max(span.end_ns for span in store.get_trace(trace))
    late = span_record(
        trace, "a9", "a1", "inventory", "reserve", root_end - MS // 2, root_end,
        kind=SpanKind.SERVER,
    )  # fmt: skip
    assert start < late.start_ns
    before = kept(store)[trace]
    write(store, [late])
    store.compact_rollups()
    after = kept(store)[trace]
    assert ("inventory", "reserve") in after
    assert after != before
    assert after == walked(store, trace)


@pytest.mark.parametrize("deletion", ["retention", "tail sampling", "erasure"])
def test_every_deletion_of_spans_deletes_their_kept_paths(
    store: DuckDBStore, deletion: str
) -> None:
    """Retention (a trace whose first span goes), tail sampling and erasure leave no kept
    path of what they delete, and keep the rest."""
    before = set(kept(store))
    if deletion == "retention":
        cutoff = T0 + 100 * 6 * S
        store.delete_older_than(cutoff)
        gone = {trace_id(i) for i in range(100)}
    elif deletion == "tail sampling":
        gone = set(sorted(before)[:5])
        store.delete_traces(sorted(gone))
    else:
        store.erase_user([USER])
        gone = {trace_id(users_request())}
    assert before & gone, "deleted traces with kept paths"
    assert set(kept(store)) == before - gone


def test_the_upgrade_walks_the_copies_already_kept(store: DuckDBStore, tmp_path: Path) -> None:
    """A file at version 24 with copies kept (this hour's, its paths and their version
    taken away): opened, its copies in the share have the paths the folds gave them."""
    folded = kept(store)
    assert folded, "reached kept paths"
    store._run(f"DROP TABLE {REQUEST_PATHS}", [], "making a file of version 24")
    store._run("UPDATE threadline_schema SET version = 24 WHERE version = 25", [], "making it")
    store.close()
    reopened = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        assert kept(reopened) == folded
    finally:
        reopened.close()
