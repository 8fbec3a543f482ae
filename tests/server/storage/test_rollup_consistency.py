"""Rollups against the full scan: random workloads, the same answers.

Hypothesis builds traces (entry spans, CLIENT→SERVER calls, PRODUCER→CONSUMER hops,
SERVER spans under another service's span with no CLIENT span (inferred edges), the
SDK's own telemetry spans, failures, clock spread over a few minutes), writes them
in random batches in random order with some batches re-sent, deletes some traces,
and then every fleet view read from the rollups must match the scan of the stored
spans: counts exactly, percentiles within the sketch's error. Fresh deltas and
folded rows must answer alike, so each example is checked before and after
compaction, and a store opened on old spans (no rollup tables yet) must backfill to
the same answers. A store killed (SIGKILL) amid commits and a fold must reopen with
rollups and summaries that answer as the scan of the spans it kept.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support.processes import sigkill_once_said
from support.spans import span_record
from threadline.conventions import (
    JOURNEY_SYNTHETIC,
    MESSAGING_DESTINATION,
    MESSAGING_MESSAGE_ID,
    SDK_STATS_SPAN,
    SYNTHETIC_TRUE,
)
from threadline.server.aggregates import (
    EdgeKind,
    OperationRed,
    Percentiles,
    PropagationFindings,
    RedStats,
    ServiceMap,
    Split,
    Target,
    TimeWindow,
)
from threadline.server.analysis import sketch
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanLink, SpanRecord, StatusCode, TraceQuery
from threadline.server.storage.duckdb import DuckDBStore, rollups
from threadline.server.storage.duckdb.migrations import stored_version

MS: Final = 1_000_000
MINUTE: Final = 60_000 * MS
T0: Final = 28_333_334 * MINUTE  # a whole minute in 2023
WINDOW: Final = TimeWindow(T0 - MINUTE, T0 + 10 * MINUTE)
SERVICES: Final = ("web", "cart", "pay", "mail")
# Every table a rollup step (schema version 3 and later) adds.
ROLLUP_TABLES: Final = (
    "rollup_operations",
    "rollup_edges",
    "rollup_names",
    "rollup_services",
    "rollup_sdk_stats",
)


def trace_spans(rng: random.Random, index: int) -> list[SpanRecord]:
    """One trace: a web root calling 0–3 services, some by a queue hop, some failing."""
    trace = f"{index + 1:032x}"
    start = T0 + rng.randrange(8 * MINUTE)
    duration = rng.randrange(1, 2_000) * MS
    spans = [
        span_record(
            trace, "r", None, "web", rng.choice(["GET /", "POST /buy"]), start, start + duration
        )
    ]
    for n in range(rng.randrange(4)):
        callee = rng.choice(SERVICES[1:])
        queue = rng.random() < 0.3
        at = start + rng.randrange(duration)
        took = rng.randrange(0, 500) * MS
        caller_id, callee_id = f"c{n}", f"s{n}"
        spans.append(
            span_record(
                trace,
                caller_id,
                "r",
                "web",
                f"call {callee}",
                at,
                at + (MS if queue else took + MS),
                kind=SpanKind.PRODUCER if queue else SpanKind.CLIENT,
            )
        )
        # Some calls have no CLIENT span (an uninstrumented client): the server's
        # parent is the root, an inferred edge when the services differ.
        inferred = not queue and rng.random() < 0.3
        if inferred:
            spans.pop()
            callee = rng.choice(SERVICES)  # "web" too: a same-service child, no edge
        begin = at + (rng.randrange(1, 90_000) * MS if queue else 0)
        status = StatusCode.ERROR if rng.random() < 0.2 else StatusCode.UNSET
        parent: str | None = "r" if inferred else caller_id
        callee_trace, links, attributes = trace, (), {}
        if queue:
            attributes = {
                MESSAGING_MESSAGE_ID: f"m{index}-{n}",
                MESSAGING_DESTINATION: rng.choice(["orders", "mail"]),
            }
            spans[-1] = dataclasses.replace(spans[-1], attributes=attributes)
            if rng.random() < 0.3:  # consumed in a trace of its own, half of them linked
                callee_trace, parent = f"{index + 1:030x}a{n}", None
                if rng.random() < 0.5:
                    links = (SpanLink(trace, caller_id),)
        elif rng.random() < 0.1:  # a call whose context was lost on the way
            callee_trace, parent = f"{index + 1:030x}b{n}", None
        spans.append(
            span_record(
                callee_trace,
                callee_id,
                parent,
                callee,
                rng.choice(["do", "undo"]),
                begin,
                begin + took,
                kind=SpanKind.CONSUMER if queue else SpanKind.SERVER,
                status=status,
                attributes=attributes,
                links=links,
            )
        )
        if rng.random() < 0.1:  # its parent never arrives: an orphan
            spans.append(span_record(trace, f"o{n}", f"gone{n}", callee, "work", begin, begin + MS))
    if rng.random() < 0.3:  # the SDK's report about itself: in no fleet view
        spans.append(stats_report(rng, index, start))
    return spans


def stats_report(rng: random.Random, index: int, start: int) -> SpanRecord:
    """A ``threadline.sdk.stats`` span from one of a few processes of one of the services,
    some at the very nanosecond of another (the same minute, and ties)."""
    exported = rng.randrange(1_000)
    attributes: dict[str, object] = {
        "threadline.sdk.spans.exported": exported,
        "threadline.sdk.spans.retried": rng.randrange(50),
        "threadline.sdk.spans.queued": rng.randrange(100),
        "threadline.sdk.spans.dropped": 3,
        "threadline.sdk.spans.dropped.queue_full": 2,
        "threadline.sdk.spans.dropped.retry_deadline": 1,
        "threadline.sdk.requests.failed": rng.randrange(5),
        "threadline.sdk.queue.capacity": 2048,
        "process.pid": rng.choice([11, 12]),
    }
    resource = {"service.name": "?", "host.name": rng.choice(["h1", "h2"])}
    at = T0 + rng.choice([0, MINUTE // 2, rng.randrange(8 * MINUTE)])
    service = rng.choice(SERVICES)
    resource["service.name"] = service
    # A trace of its own, as the SDK sends it: never one of the traces it reports on.
    trace = f"5d{index + 1:030x}"
    return span_record(
        trace, "st", None, service, SDK_STATS_SPAN, at, at, attributes=attributes,
        resource=resource, kind=SpanKind.INTERNAL,
    )  # fmt: skip


def random_batches(
    rng: random.Random, traces: int, batches: int
) -> tuple[list[SpanRecord], list[list[SpanRecord]]]:
    """``traces`` traces' spans, shuffled (children before parents, minutes out of
    order), and the same spans cut into up to ``batches`` batches."""
    spans = [span for index in range(traces) for span in trace_spans(rng, index)]
    rng.shuffle(spans)
    cuts = sorted(rng.sample(range(1, len(spans)), min(batches - 1, len(spans) - 1)))
    return spans, [spans[a:b] for a, b in zip([0, *cuts], [*cuts, len(spans)], strict=True)]


def close_enough(rollup: Percentiles | None, scan: Percentiles | None) -> bool:
    if rollup is None or scan is None:
        return rollup is scan
    return all(
        abs(a - b) <= sketch.ALPHA * b + 1e-6
        for a, b in zip(
            (rollup.p50, rollup.p90, rollup.p95, rollup.p99),
            (scan.p50, scan.p90, scan.p95, scan.p99),
            strict=True,
        )
    )


def same_stats(rollup: RedStats, scan: RedStats) -> None:
    assert (rollup.requests, rollup.errors) == (scan.requests, scan.errors)
    assert close_enough(rollup.latency, scan.latency), (rollup.latency, scan.latency)


def same_operations(rollup: list[OperationRed], scan: list[OperationRed]) -> None:
    assert [(r.service, r.operation) for r in rollup] == [(r.service, r.operation) for r in scan]
    for a, b in zip(rollup, scan, strict=True):
        same_stats(a.stats, b.stats)


def same_map(rollup: ServiceMap, scan: ServiceMap) -> None:
    same_operations(list(rollup.services), list(scan.services))
    assert [(e.caller, e.callee, e.kind) for e in rollup.edges] == [
        (e.caller, e.callee, e.kind) for e in scan.edges
    ]
    pairs = list(zip(rollup.edges, scan.edges, strict=True)) + list(
        zip(rollup.operation_edges, scan.operation_edges, strict=True)
    )
    assert len(rollup.operation_edges) == len(scan.operation_edges)
    for a, b in pairs:
        assert (a.stats.calls, a.stats.errors) == (b.stats.calls, b.stats.errors)
        assert close_enough(a.stats.latency, b.stats.latency)
        assert close_enough(a.stats.queue_dwell, b.stats.queue_dwell)


def same_propagation(rollup: PropagationFindings, scan: PropagationFindings) -> None:
    """Every count exact; an example wherever something broke."""
    assert [(e.service, e.operation, e.entry_spans, e.unparented) for e in rollup.entries] == [
        (e.service, e.operation, e.entry_spans, e.unparented) for e in scan.entries
    ]
    assert [(o.service, o.orphans) for o in rollup.orphans] == [
        (o.service, o.orphans) for o in scan.orphans
    ]
    assert [
        (h.producer, h.consumer, h.destination, h.messages, h.broken, h.linked)
        for h in rollup.message_hops
    ] == [
        (h.producer, h.consumer, h.destination, h.messages, h.broken, h.linked)
        for h in scan.message_hops
    ]
    assert all(e.example_trace_id for e in rollup.entries if e.unparented)
    assert all(o.example_trace_id for o in rollup.orphans)
    assert all(h.example_consumer_trace_id for h in rollup.message_hops if h.broken)


def same_groups(store: DuckDBStore, target: Target, live: list[SpanRecord]) -> None:
    """Failed requests: the scan's counts; a sample of the right traces, its operations
    counted over exactly those traces; with a sample holding everything, the scan's
    answer whole."""
    rollup = store.trace_groups(target, Split.FAILED, WINDOW, sample=4, sample_ids=4)
    scan = store.scan.trace_groups(target, Split.FAILED, WINDOW, sample=4)
    assert (rollup.focus_traces, rollup.baseline_traces) == (
        scan.focus_traces,
        scan.baseline_traces,
    )
    assert (rollup.focus_sample, rollup.baseline_sample) == (
        scan.focus_sample,
        scan.baseline_sample,
    )
    requests = requests_of(target, WINDOW, live)
    failed = {s.trace_id for s in requests if s.status is StatusCode.ERROR}
    assert set(rollup.focus_ids) <= failed
    assert not set(rollup.baseline_ids) & failed
    assert set(rollup.baseline_ids) <= {s.trace_id for s in requests}
    assert (len(rollup.focus_ids), len(rollup.baseline_ids)) == (
        rollup.focus_sample,
        rollup.baseline_sample,
    )
    held: dict[tuple[str, str], list[int]] = {}
    for group, ids in ((0, rollup.focus_ids), (1, rollup.baseline_ids)):
        for trace_id in ids:
            of_trace = [s for s in live if s.trace_id == trace_id and s.name != SDK_STATS_SPAN]
            for key in {(s.service_name, s.name) for s in of_trace}:
                held.setdefault(key, [0, 0])[group] += 1
    assert [
        (o.service, o.operation, o.focus_traces, o.baseline_traces) for o in rollup.operations
    ] == [(service, name, *held[(service, name)]) for service, name in sorted(held)]
    everything = store.trace_groups(target, Split.FAILED, WINDOW, sample=10_000)
    whole = store.scan.trace_groups(target, Split.FAILED, WINDOW, sample=10_000)
    assert everything.operations == whole.operations
    assert everything.attributes == whole.attributes


def requests_of(target: Target, window: TimeWindow, spans: list[SpanRecord]) -> list[SpanRecord]:
    """The target's requests: entry spans of its service (and operation), or root spans."""
    found = []
    for span in spans:
        if span.name == SDK_STATS_SPAN or not window.start_ns <= span.start_ns < window.end_ns:
            continue
        root = not span.parent_span_id
        if target.service is None:
            if root:
                found.append(span)
            continue
        entry = root or span.kind in (SpanKind.SERVER, SpanKind.CONSUMER)
        if entry and span.service_name == target.service and target.operation in (None, span.name):
            found.append(span)
    return found


def same_split(
    store: DuckDBStore, target: Target, window: TimeWindow, live: list[SpanRecord]
) -> None:
    """Slow and failed requests counted exactly, examples among the slowest failed ones."""
    requests = requests_of(target, window, live)
    failed = store.trace_groups(target, Split.FAILED, window, sample=4)
    errors = [s for s in requests if s.status is StatusCode.ERROR]
    assert (failed.focus_traces, failed.baseline_traces) == (
        len(errors),
        len(requests) - len(errors),
    )
    assert set(failed.examples) <= {s.trace_id for s in errors}
    assert len(failed.examples) == min(5, len({s.trace_id for s in errors}))
    # The examples are the traces of the slowest failed requests, wherever they started.
    slowest: dict[str, int] = {}
    for span in errors:
        slowest[span.trace_id] = max(slowest.get(span.trace_id, 0), span.duration_ns)
    others = [d for trace_id, d in slowest.items() if trace_id not in failed.examples]
    if failed.examples and others:
        assert min(slowest[trace_id] for trace_id in failed.examples) >= max(others)
    slow = store.trace_groups(target, Split.SLOW, window, percentile=90, sample=4)
    if not requests:
        assert (slow.focus_traces, slow.baseline_traces) == (0, 0)
        return
    durations = [s.duration_ns for s in requests]
    exact = (
        statistics.quantiles(durations, n=10, method="inclusive")[8]
        if len(durations) > 1
        else durations[0]
    )
    assert slow.threshold_ns == pytest.approx(exact)
    above = sum(1 for d in durations if d >= slow.threshold_ns)
    assert (slow.focus_traces, slow.baseline_traces) == (above, len(durations) - above)
    scan = store.scan.trace_groups(target, Split.SLOW, window, percentile=90, sample=4)
    assert (slow.focus_traces, slow.baseline_traces) == (scan.focus_traces, scan.baseline_traces)


TARGETS: Final = (Target(), Target("web"), Target("cart", "do"), Target("pay"))


def check(store: DuckDBStore, windows: list[TimeWindow]) -> None:
    for window in windows:
        same_operations(store.operation_red(window), store.scan.operation_red(window))
        same_map(store.service_map(window), store.scan.service_map(window))
        same_propagation(store.propagation(window), store.scan.propagation(window))
    for service in SERVICES:
        for window in windows:
            assert store.sdk_stats(service, window) == store.scan.sdk_stats(service, window)
        for bucket in (MINUTE, 3 * MINUTE):
            first = (T0 - 3 * MINUTE) // bucket * bucket  # on a bucket boundary
            window = TimeWindow(first, first + 12 * MINUTE)
            rollup = store.service_red(service, window, bucket_ns=bucket)
            scan = store.scan.service_red(service, window, bucket_ns=bucket)
            same_stats(rollup.totals, scan.totals)
            assert len(rollup.buckets) == len(scan.buckets)
            for a, b in zip(rollup.buckets, scan.buckets, strict=True):
                assert a.start_ns == b.start_ns
                same_stats(a.stats, b.stats)


WINDOWS: Final = [WINDOW, TimeWindow(T0 + 2 * MINUTE, T0 + 5 * MINUTE)]
# What a file of schema version 2 lacks: the rollup tables of versions 3 and 5.
ROLLUP_TABLES_V3: Final = ("rollup_operations", "rollup_edges", "rollup_names", "rollup_services")
ROLLUP_TABLES_V5: Final = (
    "rollup_roots",
    "rollup_entries",
    "rollup_orphans",
    "rollup_orphan_spans",
    "rollup_hops",
)

# Random workloads of up to 40 traces in up to 4 batches, up to 5 traces deleted.
SMALL_WORKLOADS: Final = {
    "seed": st.integers(min_value=0, max_value=2**32),
    "traces": st.integers(min_value=1, max_value=40),
    "batches": st.integers(min_value=1, max_value=4),
    "deleted": st.integers(min_value=0, max_value=5),
}


# Each run draws new random workloads (no fixed seed), so runs add up to more.
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    traces=st.integers(min_value=1, max_value=30),
    batches=st.integers(min_value=1, max_value=6),
    resend=st.booleans(),
    deleted=st.integers(min_value=0, max_value=5),
)
def test_rollups_answer_like_the_full_scan(
    seed: int, traces: int, batches: int, resend: bool, deleted: int
) -> None:
    """Random traces in random batches and order, re-sent and deleted: rollups == scan."""
    rng = random.Random(seed)
    spans, parts = random_batches(rng, traces, batches)
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "spans.duckdb")
        try:
            for part in parts:
                store.write(SpanBatch.from_records(part)).result(timeout=30)
            if resend:
                store.write(SpanBatch.from_records(rng.choice(parts))).result(timeout=30)
            doomed = rng.sample(sorted({s.trace_id for s in spans}), min(deleted, traces - 1))
            store.delete_traces(doomed)
            assert store.operation_red(WINDOW), "the workload reached the store"
            check(store, WINDOWS)
            store.compact_rollups()
            check(store, WINDOWS)
        finally:
            store.close()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**SMALL_WORKLOADS)
def test_each_slot_of_a_red_series_reads_as_its_own_window(
    seed: int, traces: int, batches: int, deleted: int
) -> None:
    """A RED series finds each slot's percentiles from the ranks of their order
    statistics in SQL; a window of one slot alone merges its rows per bucket. Both
    read the same histogram, so they agree exactly, before and after a fold, with
    probes' spans subtracted (buckets left holding no span) and traces deleted."""
    rng = random.Random(seed)
    spans, parts = random_batches(rng, traces, batches)
    # The first trace (by id) stays a user's, and stored: its web root is in every series.
    others = sorted({s.trace_id for s in spans})[1:]
    probes = {trace_id for trace_id in others if rng.random() < 0.3}
    marked = {JOURNEY_SYNTHETIC: SYNTHETIC_TRUE}
    parts = [
        [
            dataclasses.replace(s, attributes={**s.attributes, **marked})
            if s.trace_id in probes
            else s
            for s in part
        ]
        for part in parts
    ]
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "spans.duckdb")
        try:
            for part in parts:
                store.write(SpanBatch.from_records(part)).result(timeout=30)
            store.delete_traces(rng.sample(others, min(deleted, len(others))))
            for fold in (False, True):
                if fold:
                    store.compact_rollups()
                requests = 0
                for service in SERVICES:
                    for bucket in (MINUTE, 3 * MINUTE):
                        first = (T0 - 3 * MINUTE) // bucket * bucket
                        series = store.service_red(
                            service, TimeWindow(first, first + 12 * MINUTE), bucket_ns=bucket
                        )
                        for slot in series.buckets:
                            alone = TimeWindow(slot.start_ns, slot.start_ns + bucket)
                            assert slot.stats == store.service_red(service, alone).totals
                            requests += slot.stats.requests
                assert requests, "the series reached the kept trace's requests"
        finally:
            store.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**SMALL_WORKLOADS)
# A trace whose failed request and ok one lie minutes apart, so a slice reads only the
# ok one: it must not join the baseline (it did), nor leave the focus sample short.
@example(seed=840752, traces=25, batches=1, deleted=0)
@example(seed=840752, traces=27, batches=1, deleted=0)
def test_hotspot_and_slow_groups_count_like_the_full_scan(
    seed: int, traces: int, batches: int, deleted: int
) -> None:
    """Failed and slow requests counted from the rollups exactly, with the scan's sample."""
    rng = random.Random(seed)
    spans, parts = random_batches(rng, traces, batches)
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBStore(Path(directory) / "spans.duckdb")
        try:
            for part in parts:
                store.write(SpanBatch.from_records(part)).result(timeout=30)
            doomed = rng.sample(sorted({s.trace_id for s in spans}), min(deleted, traces - 1))
            store.delete_traces(doomed)
            live = [span for span in spans if span.trace_id not in doomed]
            for target in TARGETS:
                same_split(store, target, WINDOW, live)
            store.compact_rollups()
            for target in (Target(), Target("cart", "do")):
                same_split(store, target, WINDOW, live)
                same_groups(store, target, live)
        finally:
            store.close()


# Writes the spans of an Arrow file in batches: the first half acknowledged, then the
# rest one commit at a time, a fold asked for before the batch ``argv[4]`` of those
# (none if negative), and waits to be killed.
_WRITE_UNTIL_KILLED = """
import sys, threading, time
from pathlib import Path
import pyarrow as pa
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb import DuckDBStore

with pa.memory_map(sys.argv[2]) as source:
    table = pa.ipc.open_file(source).read_all()
size = int(sys.argv[3])
batches = [SpanBatch(table.slice(at, size)) for at in range(0, table.num_rows, size)]
half = len(batches) // 2
store = DuckDBStore(Path(sys.argv[1]))
for future in [store.write(batch) for batch in batches[:half]]:
    future.result(timeout=60)
print(sum(len(batch) for batch in batches[:half]), flush=True)
for n, batch in enumerate(batches[half:]):
    if n == int(sys.argv[4]):
        threading.Thread(target=store.compact_rollups, daemon=True).start()
    # A commit each, so the kill finds the writer among them.
    store.write(batch).result(timeout=60)
time.sleep(60)
"""
KILL_WAIT_S: Final = 60.0


@pytest.mark.parametrize(("seed", "fold_after"), [(1, -1), (2, -1), (3, 1), (4, 6)])
def test_a_store_killed_mid_write_reopens_with_rollups_and_summaries_of_its_spans(
    tmp_path: Path, seed: int, fold_after: int
) -> None:
    """SIGKILL while batches (and a fold) are being committed: the file reopens with every
    acknowledged span, and its rollups and trace summaries answer as a scan of the spans
    it holds. Rollups, summaries and spans commit together, or not at all."""
    rng = random.Random(seed)
    spans, _ = random_batches(rng, 3_000, 1)
    shop = tmp_path / "spans.arrow"
    table = SpanBatch.from_records(spans).table
    with pa.OSFile(str(shop), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    path = tmp_path / "killed.duckdb"
    log = path.with_name(path.name + ".wal")
    sizes: list[int] = []  # the log's, the first at the acknowledgement

    def committed_since_and_a_moment() -> bool:
        # Once the log has changed since the acknowledgement, a queued batch has been
        # committed and the writer is at the next ones (or the fold): kill it there.
        sizes.append(log.stat().st_size if log.exists() else 0)
        if sizes[-1] == sizes[0]:
            return False
        time.sleep(rng.uniform(0.0, 0.3))
        return True

    said = sigkill_once_said(
        _WRITE_UNTIL_KILLED,
        *(str(path), str(shop), "400", str(fold_after)),
        wait_s=KILL_WAIT_S,
        until=committed_since_and_a_moment,
    )
    assert said.strip().isdigit(), said
    acknowledged = int(said)
    store = DuckDBStore(path)
    try:
        stored = store.counts().spans
        assert acknowledged <= stored <= len(spans)
        assert store.operation_red(WINDOW), "the acknowledged spans reached the rollups"
        for state in ("as reopened", "folded"):
            check(store, WINDOWS)
            for query in (
                TraceQuery(limit=5_000),
                TraceQuery(status=StatusCode.ERROR, order="slowest", limit=5_000),
            ):
                found = store.search_traces(query)
                assert found, (state, query)
                assert found == store.scan.search_traces(query), (state, query)
            store.compact_rollups()
    finally:
        store.close()


def test_a_store_written_without_rollups_backfills_them_on_open(tmp_path: Path) -> None:
    """Opening spans stored before rollups existed (schema version 2) builds rollups that
    answer like a scan."""
    rng = random.Random(7)
    spans = [span for index in range(60) for span in trace_spans(rng, index)]
    path = tmp_path / "old.duckdb"
    old = DuckDBStore(path, rollups=False)
    try:
        old.write(SpanBatch.from_records(spans)).result(timeout=30)
    finally:
        old.close()
    # What version 2 had: the spans and the version table, no rollup tables.
    with duckdb.connect(str(path)) as connection:
        for table in (
            *ROLLUP_TABLES,
            *ROLLUP_TABLES_V5,
            "trace_summaries",
            *("rollup_retries", "rollup_synthetic", "rollup_synthetic_edges", "alert_states"),
            "rollup_exemplars",
            *("journey_steps", "journey_synthetic", "logs", "drill_results"),
            "documents",
            *("journey_session_touches", "journey_session_failures", "journey_slo_minutes"),
            "rollup_message_spans",
            "failed_trace_spans",
        ):
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DELETE FROM threadline_schema WHERE version > 2")
        connection.execute("INSERT INTO threadline_schema VALUES (2, NULL, 'test')")
        assert stored_version(connection) == 2
    store = DuckDBStore(path)
    try:
        assert store.operation_red(WINDOW), "the backfill counted the stored spans"
        assert any(e.kind is EdgeKind.INFERRED for e in store.service_map(WINDOW).edges)
        findings = store.propagation(WINDOW)
        assert findings.orphans, "the backfill counted orphans"
        assert any(hop.broken for hop in findings.message_hops), "and broken message hops"
        check(store, WINDOWS)
    finally:
        store.close()


@pytest.mark.parametrize("rollups", [True, False])
def test_without_rollups_the_store_answers_by_scan(tmp_path: Path, rollups: bool) -> None:
    """The baseline store the benchmark compares against answers the same questions."""
    rng = random.Random(3)
    store = DuckDBStore(tmp_path / "s.duckdb", rollups=rollups)
    try:
        store.write(SpanBatch.from_records(trace_spans(rng, 0))).result(timeout=30)
        same_operations(store.operation_red(WINDOW), store.scan.operation_red(WINDOW))
    finally:
        store.close()


def test_a_flood_of_operation_names_is_capped_with_an_other_bucket(tmp_path: Path) -> None:
    """Past the cap, a service's new operation names count under "(other)", nothing lost."""
    flood = rollups.OPERATION_CAP + 20
    spans = [
        span_record(f"{n + 1:032x}", "r", None, "web", f"GET /item/{n:04d}", T0 + n, T0 + n + MS)
        for n in range(flood)
    ]
    spans.append(span_record("f" * 32, "r", None, "cart", "add", T0, T0 + MS))
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(SpanBatch.from_records(spans)).result(timeout=30)
        later = span_record("e" * 32, "r", None, "web", "GET /item/0000", T0, T0 + MS)
        store.write(SpanBatch.from_records([later])).result(timeout=30)
        red = {(r.service, r.operation): r.stats.requests for r in store.operation_red(WINDOW)}
    finally:
        store.close()
    web = {operation: n for (service, operation), n in red.items() if service == "web"}
    assert len(web) == rollups.OPERATION_CAP + 1
    assert web[rollups.OTHER] == 20
    assert web["GET /item/0000"] == 2  # a kept name still counts after the cap is reached
    assert sum(web.values()) == flood + 1
    assert red[("cart", "add")] == 1  # the cap is per service


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    traces=st.integers(min_value=1, max_value=30),
    batches=st.integers(min_value=1, max_value=6),
    deleted=st.integers(min_value=0, max_value=5),
    kept_minutes=st.integers(min_value=0, max_value=10),
)
def test_kept_message_spans_are_the_stored_ones(
    seed: int, traces: int, batches: int, deleted: int, kept_minutes: int
) -> None:
    """The message spans the hop lookup joins (``rollup_message_spans``) are exactly the
    stored producer and consumer spans with a message id, their ids as the attributes
    say, through re-sent batches, deleted traces and retention (``kept_minutes`` 10:
    none)."""
    rng = random.Random(seed)
    spans, parts = random_batches(rng, traces, batches)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spans.duckdb"
        store = DuckDBStore(path)
        try:
            for part in [*parts, rng.choice(parts)]:
                store.write(SpanBatch.from_records(part)).result(timeout=30)
            ids = sorted({s.trace_id for s in spans})
            store.delete_traces(rng.sample(ids, min(deleted, len(ids))))
            if kept_minutes < 10:
                store.delete_older_than(T0 + (9 - kept_minutes) * MINUTE + rng.randrange(MINUTE))
        finally:
            store.close()
        with duckdb.connect(str(path), read_only=True) as connection:
            kept = connection.execute(
                "SELECT trace_id, span_id, kind, message_id, destination FROM"
                " rollup_message_spans ORDER BY ALL"
            ).fetchall()
            stored = connection.execute(
                "SELECT trace_id, span_id, kind, attributes->>'$.\"messaging.message.id\"',"
                " coalesce(attributes->>'$.\"messaging.destination.name\"', '') FROM spans"
                " WHERE kind IN ('producer', 'consumer')"
                " AND attributes->>'$.\"messaging.message.id\"' IS NOT NULL ORDER BY ALL"
            ).fetchall()
    assert kept == stored
    if kept_minutes == 10 and deleted == 0:  # every message span sent is kept, once
        sent = {
            (s.trace_id, s.span_id)
            for s in spans
            if s.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)
            and MESSAGING_MESSAGE_ID in s.attributes
        }
        assert {(trace_id, span_id) for trace_id, span_id, *_ in kept} == sent
        assert len(kept) == len(sent)
