"""Trace summaries against the full scan: random workloads, the same lists.

Hypothesis builds traces (a root and children in several services, some failing,
some carrying a session and user id on some spans, a few with a second session,
an attribute on some spans, the SDK's own telemetry), writes them in random
batches in random order (children before parents, a trace spread over batches)
with some batches re-sent, then deletes some traces, erases a user and applies a
retention cutoff that may cut traces in two. Every search and journey list read
from the summaries must equal the same read by scanning the spans, before and
after the summary rows are folded, and with the deletions made before or after.
"""

from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path
from typing import Final
from unittest.mock import patch

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore, journey_lists, search, span_probe
from threadline.server.storage.duckdb.migrations import LATEST

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE
SERVICES: Final = ("web", "cart", "pay", "mail")
WAIT_S: Final = 30.0


def trace_spans(rng: random.Random, index: int) -> list[SpanRecord]:
    """One trace: a root (sometimes never sent) and 0–4 children spread over minutes."""
    trace = f"{index + 1:032x}"
    start = T0 + rng.randrange(8 * MINUTE)
    session = rng.choice([None, "s1", "s2", "s3"])
    user = {"s1": "u1", "s2": "u2", "s3": "u1"}.get(session or "")
    keys = {"session_id": session, "user_id": user}
    spans = []
    if rng.random() < 0.9:
        spans.append(
            span_record(
                trace,
                "r",
                None,
                "web",
                rng.choice(["GET /", "POST /buy"]),
                start,
                start + rng.randrange(1, 2_000) * MS,
                status=rng.choice([StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR]),
                **keys,
            )
        )
    for n in range(rng.randrange(5)):
        at = start + rng.randrange(-5_000, 3 * MINUTE // MS) * MS  # skewed or late
        spans.append(
            span_record(
                trace,
                f"c{n}",
                rng.choice(["r", "c0", "gone"]),
                rng.choice(SERVICES),
                rng.choice(["do", "undo"]),
                at,
                at + rng.randrange(0, 900) * MS,
                kind=rng.choice([SpanKind.SERVER, SpanKind.CLIENT, SpanKind.CONSUMER]),
                status=StatusCode.ERROR if rng.random() < 0.2 else StatusCode.UNSET,
                # The ids on some spans only; rarely a second session in the trace.
                session_id=rng.choice([None, session, "s9" if rng.random() < 0.1 else session]),
                user_id=rng.choice([None, user]),
                attributes={"tier": rng.choice(["gold", "free"])},
            )
        )
    if rng.random() < 0.1:  # the SDK's report about itself: in no list
        spans.append(
            span_record(f"{index + 1:031x}f", "st", None, "web", SDK_STATS_SPAN, start, start + MS)
        )
    return spans


QUERIES: Final = [
    TraceQuery(limit=200),
    TraceQuery(limit=200, order="slowest"),
    TraceQuery(limit=200, order="oldest"),
    TraceQuery(limit=200, order="fastest"),
    TraceQuery(limit=5, order="slowest", offset=3),
    TraceQuery(limit=200, service="pay"),
    TraceQuery(limit=200, operation="undo"),
    TraceQuery(limit=200, service="cart", operation="do", status=StatusCode.ERROR),
    TraceQuery(limit=200, status=StatusCode.ERROR, order="slowest"),
    TraceQuery(limit=200, status=StatusCode.OK),
    TraceQuery(limit=200, min_duration_ns=500 * MS, max_duration_ns=90_000 * MS),
    TraceQuery(limit=200, start_ns=T0 + 2 * MINUTE, end_ns=T0 + 9 * MINUTE),
    TraceQuery(limit=200, session_id="s1"),
    TraceQuery(limit=200, session_id="s9"),
    TraceQuery(limit=200, user_id="u1", order="slowest"),
    TraceQuery(limit=200, attributes=(("tier", "gold"),), service="mail"),
    TraceQuery(limit=200, attributes=(("tier", "gold"),), start_ns=T0 + MINUTE),
    TraceQuery(limit=3, attributes=(("tier", "gold"),), order="slowest"),
    TraceQuery(limit=2, offset=1, attributes=(("tier", "free"),), service="cart"),
]
# Probes of a trace or two at a time (``span_probe``): many probes, and falls back to
# the window's read, on workloads this small.
SMALL_PROBES: Final = {"FIRST_TOGETHER": 2, "MOST_TOGETHER": 6, "FIRST_SPREAD": 1, "MOST_SPREAD": 3}
JOURNEYS: Final[list[dict[str, object]]] = [
    {"order": "recent"},
    {"order": "slowest"},
    {"order": "slowest", "failed": True},
    {"order": "recent", "failed": False},
    {"order": "recent", "start_ns": T0 + 3 * MINUTE, "end_ns": T0 + 5 * MINUTE},
    {"order": "slowest", "start_ns": T0 + 6 * MINUTE},
]


def check(store: DuckDBStore) -> None:
    for query in QUERIES:
        assert store.search_traces(query) == store.scan.search_traces(query), query
    with patch.multiple(span_probe, **SMALL_PROBES):  # type: ignore[arg-type]
        for query in QUERIES:
            if query.attributes:
                assert store.search_traces(query) == store.scan.search_traces(query), query
    for prefix in ("s", "s1", "s9", "u"):
        scanned_ids = search.ids_with_prefix(store._fetch, "session_id", prefix, limit=10)
        assert store.ids_with_prefix("session_id", prefix, limit=10) == scanned_ids, prefix
    for session, user in (("s1", None), ("s9", None), (None, "u1")):
        scanned = search.journey_traces(store._fetch, session_id=session, user_id=user, limit=500)
        assert store.journey_traces(session_id=session, user_id=user) == scanned, (session, user)
    for journeys in JOURNEYS:
        scanned = store.scan.list_journeys(limit=100, **journeys)  # type: ignore[arg-type]
        # From the journey summaries as the store chooses, with every session across
        # an edge or not folded counted again however long, and with none counted
        # again: every trace of the window grouped.
        for name, value in (
            ("RECOUNT_SHARE", 0.25),
            ("RECOUNT_SHARE", float("inf")),
            ("RECOUNT_MAX", -1),
        ):
            with patch.object(journey_lists, name, value):
                found = store.list_journeys(limit=100, **journeys)  # type: ignore[arg-type]
            assert found == scanned, (journeys, name, value)


# Each run draws new random workloads (no fixed seed), so runs add up to more.
@settings(max_examples=7, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    traces=st.integers(min_value=1, max_value=30),
    batches=st.integers(min_value=1, max_value=6),
    resend=st.booleans(),
    deleted=st.integers(min_value=0, max_value=4),
    erase=st.booleans(),
    cut_minutes=st.one_of(st.none(), st.integers(min_value=1, max_value=9)),
    folded_first=st.booleans(),
    folded_at=st.integers(min_value=1, max_value=6),
)
def test_summaries_answer_like_the_full_scan(
    seed: int,
    traces: int,
    batches: int,
    resend: bool,
    deleted: int,
    erase: bool,
    cut_minutes: int | None,
    folded_first: bool,
    folded_at: int,
) -> None:
    """Random traces in random batches and order (some after the first ones were
    folded), re-sent, deleted, erased and cut by retention (of folded summaries or not):
    every list from the summaries equals the scan's."""
    rng = random.Random(seed)
    spans = [span for index in range(traces) for span in trace_spans(rng, index)]
    assume(spans)  # a lone trace whose root was never sent and has no children
    rng.shuffle(spans)  # children before parents, traces across batches
    cuts = sorted(rng.sample(range(1, len(spans)), min(batches - 1, len(spans) - 1)))
    parts = [spans[a:b] for a, b in zip([0, *cuts], [*cuts, len(spans)], strict=True)]
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "spans.duckdb")
        try:
            for index, part in enumerate(parts):
                if index == folded_at:  # later batches reach traces folded before
                    store.compact_rollups()
                store.write(SpanBatch.from_records(part)).result(timeout=WAIT_S)
            if resend:
                store.write(SpanBatch.from_records(rng.choice(parts))).result(timeout=WAIT_S)
            check(store)
            if folded_first:
                store.compact_rollups()
                check(store)
            sent = sorted({s.trace_id for s in spans})  # a trace may have sent nothing
            doomed = rng.sample(sent, min(deleted, len(sent)))
            store.delete_traces(doomed)
            if erase:
                store.erase_user(["u2"])
            if cut_minutes is not None:
                store.delete_older_than(T0 + cut_minutes * MINUTE + 1)
            check(store)
            store.compact_rollups()
            check(store)
        finally:
            store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_traces_arriving_after_a_fold_add_to_the_kept_journeys(tmp_path: Path, seed: int) -> None:
    """New traces and late spans of folded traces (some naming another session), written
    after a fold as live traffic arrives, change their sessions' kept rows without
    counting those sessions again, however many there are: no list of the whole period
    groups every trace, and every list equals the scan's."""
    rng = random.Random(seed)
    store = DuckDBStore(tmp_path / "spans.duckdb")

    def every_trace(*args: object, **kwargs: object) -> None:
        raise AssertionError("the list grouped every trace")

    try:
        # Trace ids from ``trace_spans``'s index: at most 30 in one run, and the later
        # ones far from them, so no SDK report's trace id is a trace's.
        folded = [span for index in range(30) for span in trace_spans(rng, index)]
        store.write(SpanBatch.from_records(folded)).result(timeout=WAIT_S)
        store.compact_rollups()
        kept = {journey.session_id: journey for journey in store.list_journeys()}
        for first in (1000, 1020):  # two commits of whole traces, not folded
            fresh = [s for index in range(first, first + 20) for s in trace_spans(rng, index)]
            store.write(SpanBatch.from_records(fresh)).result(timeout=WAIT_S)
        late = [
            span_record(
                f"{index + 1:032x}", f"late{index}", "r", "mail", "send", at, at + MS,
                session_id=rng.choice([None, "s2", "s9"]),
                status=rng.choice([StatusCode.UNSET, StatusCode.ERROR]),
            )
            for index in range(0, 30, 2)
            for at in [T0 + rng.randrange(-MINUTE, 12 * MINUTE)]  # earlier or later
        ]  # fmt: skip
        store.write(SpanBatch.from_records(late)).result(timeout=WAIT_S)
        assert store.scan.list_journeys(limit=100)
        for journeys in JOURNEYS:
            scanned = store.scan.list_journeys(limit=100, **journeys)  # type: ignore[arg-type]
            assert store.list_journeys(limit=100, **journeys) == scanned, journeys  # type: ignore[arg-type]
        # More traces not folded than sessions a list may count again: the lists of the
        # whole period still read the kept rows (no session there is across an edge).
        with (
            patch.object(journey_lists, "RECOUNT_MAX", 3),
            patch.object(journey_lists, "_every_trace", every_trace),
        ):
            for journeys in JOURNEYS[:4]:
                scanned = store.scan.list_journeys(limit=100, **journeys)  # type: ignore[arg-type]
                assert store.list_journeys(limit=100, **journeys) == scanned, journeys  # type: ignore[arg-type]
        # Sessions kept at the fold took new traces and spans since: the kept rows and
        # the changes were added up.
        listed = store.list_journeys()
        assert [
            j
            for j in listed
            if j.session_id in kept and j.trace_count > kept[j.session_id].trace_count
        ]
        assert [
            j
            for j in listed
            if j.session_id in kept and j.span_count > kept[j.session_id].span_count
        ]
    finally:
        store.close()


def test_search_reads_the_summary_rows(tmp_path: Path) -> None:
    """Search, journey lists, a journey's traces and session ids answer from the
    summaries: a row changed behind the store's back shows, though no span says so."""
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    start = T0
    store.write(
        SpanBatch.from_records(
            [span_record("1" * 32, "r", None, "web", "GET /", start, start + MS, session_id="s1")]
        )
    ).result(timeout=WAIT_S)
    store.compact_rollups()  # folded: the session has its journey summary row
    store.close()
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "UPDATE trace_summaries SET root = {'orphan': false, 'start_ns': 0, 'span_id': 'x',"
            " 'service': 'marked', 'operation': 'marked'}, errors = 7"
        )
        connection.execute("UPDATE journey_summaries SET session_id = 's1-kept', errors = 7")
    store = DuckDBStore(path)
    try:
        (found,) = store.search_traces(TraceQuery())
        assert (found.root_service, found.error_count) == ("marked", 7)
        assert store.list_journeys()[0].error_count == 7
        (journey_trace,) = store.journey_traces(session_id="s1")
        assert (journey_trace.root_service, journey_trace.error_count) == ("marked", 7)
        # Session ids by prefix come from the journey summaries (one row per session).
        assert store.ids_with_prefix("session_id", "s", limit=10) == ["s1-kept"]
        (scanned,) = store.scan.search_traces(TraceQuery())
        assert (scanned.root_service, scanned.error_count) == ("web", 0)
    finally:
        store.close()


def test_a_store_without_rollups_searches_by_scan(tmp_path: Path) -> None:
    """``rollups=False`` (the benchmarks' baseline) keeps no summaries and scans spans."""
    store = DuckDBStore(tmp_path / "spans.duckdb", rollups=False)
    try:
        store.write(
            SpanBatch.from_records(
                [span_record("1" * 32, "r", None, "web", "GET /", T0, T0 + MS, session_id="s1")]
            )
        ).result(timeout=WAIT_S)
        assert [t.trace_id for t in store.search_traces(TraceQuery())] == ["1" * 32]
        assert [j.session_id for j in store.list_journeys()] == ["s1"]
    finally:
        store.close()
    with duckdb.connect(str(tmp_path / "spans.duckdb")) as connection:
        assert connection.execute("SELECT count(*) FROM trace_summaries").fetchall() == [(0,)]


def origins(path: Path) -> dict[str, tuple[str | None, str | None]]:
    with duckdb.connect(str(path)) as connection:
        rows = connection.execute(
            "SELECT trace_id, origin_service, origin_operation FROM trace_summaries"
        ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_folding_finds_each_failed_trace_error_origin(tmp_path: Path) -> None:
    """The fold names where each trace's error started by ``analysis.error_origin``'s
    rule: the deepest failing span, found again when a late span moves it; a failure a
    retry recovered is no origin."""
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    failed = {"status": StatusCode.ERROR}
    deep, retried = "1" * 32, "2" * 32
    try:
        store.write(
            SpanBatch.from_records(
                [
                    span_record(deep, "r", None, "web", "GET /", T0, T0 + 900 * MS, **failed),
                    span_record(deep, "p", "r", "pay", "charge", T0 + MS, T0 + 800 * MS, **failed),
                    span_record(retried, "r", None, "web", "GET /", T0, T0 + 900 * MS),
                    span_record(retried, "a", "r", "pay", "charge", T0 + MS, T0 + 9 * MS, **failed),
                    span_record(retried, "b", "r", "pay", "charge", T0 + 10 * MS, T0 + 20 * MS),
                ]
            )
        ).result(timeout=WAIT_S)
        store.compact_rollups()
    finally:
        store.close()
    assert origins(path) == {deep: ("pay", "charge"), retried: (None, None)}
    store = DuckDBStore(path)
    try:
        # The payment failed because the bank did: a late span moves the origin down.
        store.write(
            SpanBatch.from_records(
                [
                    span_record(
                        deep, "k", "p", "bank", "authorise", T0 + 2 * MS, T0 + 5 * MS, **failed
                    )
                ]
            )
        ).result(timeout=WAIT_S)
        store.compact_rollups()
    finally:
        store.close()
    assert origins(path)[deep] == ("bank", "authorise")


def test_the_version_17_step_builds_the_journey_summaries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version 16 file (folded summaries, no journey summaries) upgrades: the step
    counts every session, says how far it got, and the lists answer as the scan."""
    db = tmp_path / "spans.duckdb"
    rng = random.Random(17)
    store = DuckDBStore(db)
    try:
        spans = [span for index in range(30) for span in trace_spans(rng, index)]
        store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        store.compact_rollups()
        listed = [store.list_journeys(limit=100, **journeys) for journeys in JOURNEYS]  # type: ignore[arg-type]
    finally:
        store.close()
    with duckdb.connect(str(db)) as connection:
        connection.execute("DROP TABLE journey_summaries")
        connection.execute("UPDATE threadline_schema SET version = 16 WHERE version = ?", [LATEST])
    caplog.set_level(logging.INFO, logger="threadline.server.storage.duckdb")
    store = DuckDBStore(db)
    try:
        assert "building journey summaries from trace summaries: 10 of 10 parts" in caplog.text
        assert listed[0], "the workload has journeys"
        assert [store.list_journeys(limit=100, **journeys) for journeys in JOURNEYS] == listed  # type: ignore[arg-type]
        check(store)
    finally:
        store.close()
