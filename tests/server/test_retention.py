"""Retention: old spans and spans over the size cap are deleted on a schedule, while
ingest and queries go on."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.processes import threadline_serve
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogQuery, LogRecord
from threadline.server.retention import RetentionPolicy, enforce, parse_span_of_time
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ConfigError, ServerSettings

HOUR_NS: Final = 3600 * 10**9
DAY_NS: Final = 24 * HOUR_NS
DELETION_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0


def spans(
    count: int,
    start_ns: int,
    *,
    prefix: int,
    step_ns: int = 1000,
    rng: random.Random | None = None,
) -> SpanBatch:
    """``count`` one-span traces starting at ``start_ns``, ``step_ns`` apart.

    With ``rng``, trace ids are random and spans carry sessions and users, as real
    traffic does (their indexes then shrink little when rows are deleted).
    """
    starts = [start_ns + n * step_ns for n in range(count)]
    trace_ids = (
        [f"{rng.getrandbits(128):032x}" for _ in range(count)]
        if rng
        else [f"{prefix:08x}{n:024x}" for n in range(count)]
    )
    columns: dict[str, list[Any]] = {
        "trace_id": trace_ids,
        "span_id": [f"{n + 1:016x}" for n in range(count)],
        "parent_span_id": [None] * count,
        "service_name": ["checkout"] * count,
        "name": ["POST /checkout"] * count,
        "kind": ["server"] * count,
        "start_ns": starts,
        "end_ns": [start + 500 for start in starts],
        "duration_ns": [500] * count,
        "status": ["unset"] * count,
        "status_message": [""] * count,
        "session_id": [f"session-{rng.randrange(2000)}" for _ in range(count)]
        if rng
        else [None] * count,
        "user_id": [f"user-{rng.randrange(1000)}" for _ in range(count)] if rng else [None] * count,
        "journey_id": [None] * count,
        "attributes": ['{"http.route":"/checkout"}'] * count,
        "resource": ['{"service.name":"checkout"}'] * count,
        "events": ["[]"] * count,
        "links": ["[]"] * count,
        "scope_name": [""] * count,
    }
    return SpanBatch.from_columns(columns)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("7d", 7 * DAY_NS),
        ("12h", 12 * HOUR_NS),
        ("1d12h", 36 * HOUR_NS),
        ("1w", 7 * DAY_NS),
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
    ],
)
def test_retention_durations_parse(text: str, nanoseconds: int) -> None:
    """Retention is written as days, hours, minutes... and combinations of them."""
    assert parse_span_of_time(text, "retention") == nanoseconds


@pytest.mark.parametrize("text", ["7", "7 days", "-1d", "0d", "d", "1y", "7d" * 100])
def test_bad_retention_is_an_error_naming_the_key(text: str) -> None:
    """A retention that is not a positive duration stops the server with the key's name."""
    with pytest.raises(ConfigError, match=r"^retention: "):
        RetentionPolicy.from_settings(ServerSettings(retention=text))


def test_empty_retention_keeps_everything() -> None:
    """By default nothing is ever deleted."""
    assert not RetentionPolicy.from_settings(ServerSettings()).enabled


def test_spans_older_than_retention_are_deleted(tmp_path: Path) -> None:
    """One run deletes exactly the spans that started before now minus the retention."""
    now = time.time_ns()
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        store.write(spans(30, now - 2 * DAY_NS, prefix=1)).result()
        store.write(spans(20, now - HOUR_NS, prefix=2)).result()
        run = enforce(store, RetentionPolicy(max_age_ns=DAY_NS), now)
        assert run.by_age == 30
        assert store.counts().spans == 20
        assert enforce(store, RetentionPolicy(max_age_ns=DAY_NS), now).by_age == 0
    finally:
        store.close()


def test_a_size_measured_while_the_writer_folds_counts_no_log(tmp_path: Path) -> None:
    """A fold rewrites rows, and its log grows while it runs; the size a cap compares
    is measured between writes, checkpointed, never with a fold's log on top."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        rng = random.Random(5)
        for part in range(2):
            store.write(spans(100_000, part, prefix=part, step_ns=2, rng=rng)).result()
        before = store.size_bytes()
        folding = threading.Thread(target=store.compact_rollups)
        folding.start()
        measured: list[int] = []
        while folding.is_alive() or not measured:
            measured.append(store.size_bytes())
        folding.join()
        after = store.size_bytes()
        assert before > 0
        assert max(measured) <= max(before, after)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("parts", "per_part"),
    [(4, 100_000), (1, 20_000)],
    ids=["400k spans of random traces, out of order", "20k spans in one row group"],
)
def test_size_cap_takes_the_store_just_under_the_cap_once(
    tmp_path: Path, parts: int, per_part: int
) -> None:
    """Over max_db_bytes the oldest spans go until the measured size is under the cap;
    the next runs, with nothing arriving, delete nothing."""
    now = time.time_ns()
    base = now - HOUR_NS
    step = 1000
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        # Each batch spans the whole hour (as spans of many services do), so deleting
        # the oldest leaves every row group partly deleted.
        rng = random.Random(3)
        for part in range(parts):
            batch = spans(per_part, base + part * step, prefix=part, step_ns=parts * step, rng=rng)
            store.write(batch).result()
        # Folded now, by the writer's own fold: left to the writer, the fold of these
        # commits starts once it has been idle for two seconds, which on a slow machine
        # falls inside the measurements below, and the rows it rewrites would change
        # the size between them.
        store.fold_pending()
        total = parts * per_part
        size = store.size_bytes()
        policy = RetentionPolicy(max_bytes=int(size * 40 / 45.6))  # 45.6 MB over a 40 MB cap
        assert policy.max_bytes is not None
        deleted = enforce(store, policy, now).by_size
        assert 0 < deleted < total
        after = store.size_bytes()
        assert after <= policy.max_bytes
        if parts > 1:  # with blocks to spare, it stops just under the cap
            assert after >= policy.max_bytes * 0.85
            assert deleted < total * 0.25
        assert [enforce(store, policy, now).by_size for _ in range(2)] == [0, 0]
        assert store.counts().spans == total - deleted
        oldest_left = store.start_ns_quantile(0.0)
        assert oldest_left is not None
        assert oldest_left >= base + (deleted - 1) * step  # the oldest went first
    finally:
        store.close()


@pytest.fixture
def retaining_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`threadline serve` keeping one hour of spans, checking every 200 ms."""
    env = {**os.environ, "THREADLINE_RETENTION": "1h", "THREADLINE_RETENTION_INTERVAL": "200ms"}
    with threadline_serve(tmp_path, env=env) as served:
        yield served.url, served.log


def post_json(client: httpx.Client, url: str, trace_id: str, start_ns: int) -> int:
    span = {
        "traceId": trace_id,
        "spanId": "00000000000000a1",
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + 1_000_000),
    }
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return client.post(f"{url}/v1/traces", json=document).status_code


def test_old_spans_vanish_while_ingest_and_queries_keep_running(
    retaining_server: tuple[str, Path],
) -> None:
    """On a live server, spans past retention are deleted and logged; nothing else stops."""
    url, log_path = retaining_server
    old = [f"{0xA0 + n:02x}" + "0" * 29 + "1" for n in range(5)]
    with httpx.Client(timeout=30) as client:
        for trace_id in old:
            assert post_json(client, url, trace_id, time.time_ns() - 3 * HOUR_NS) == 200

    stop = threading.Event()
    fresh: list[str] = []
    statuses: list[int] = []

    def ingest() -> None:
        with httpx.Client(timeout=30) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                trace_id = f"{n + 1:032x}"
                statuses.append(post_json(client, url, trace_id, time.time_ns()))
                fresh.append(trace_id)

    def query() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(100_000):
                if stop.is_set():
                    return
                statuses.append(client.get(f"{url}/api/traces", params={"limit": "50"}).status_code)
                statuses.append(client.get(f"{url}/api/stats").status_code)

    workers = [threading.Thread(target=ingest), threading.Thread(target=query)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + DELETION_TIMEOUT_S
        with httpx.Client(timeout=30) as client:
            while any(client.get(f"{url}/api/traces/{t}").status_code == 200 for t in old):
                assert time.monotonic() < deadline, "old spans were not deleted in time"
                time.sleep(0.1)
        # A few more retention runs with ingest going on: at least half a second and
        # a dozen fresh spans (few on a loaded machine), within the deadline.
        time.sleep(0.5)
        deadline = time.monotonic() + DELETION_TIMEOUT_S
        while len(fresh) <= 10 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(STOP_TIMEOUT_S)

    assert len(fresh) > 10
    assert set(statuses) == {200}
    with httpx.Client(timeout=30) as client:
        stored = client.get(f"{url}/api/stats").json()["spans"]
    assert stored == len(fresh)
    assert "retention deleted" in log_path.read_text()


def test_size_cap_deletes_the_oldest_log_records_of_a_store_of_logs(tmp_path: Path) -> None:
    """A store that holds log lines and no spans is taken under the cap too, oldest first."""
    now = time.time_ns()
    base = now - HOUR_NS
    count, step = 20_000, 100_000
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        rng = random.Random(5)
        records = [
            LogRecord(
                time_ns=base + n * step, observed_ns=base + n * step,
                trace_id=f"{rng.getrandbits(128):032x}", span_id=f"{n + 1:016x}",
                service_name="checkout", severity_number=13, severity_text="WARN",
                body=f"line {n} " + "".join(rng.choices("abcdefghij", k=200)),
            )
            for n in range(count)
        ]  # fmt: skip
        store.write_logs(LogBatch.from_records(records)).result()
        policy = RetentionPolicy(max_bytes=int(store.size_bytes() * 0.6))
        assert policy.max_bytes is not None
        enforce(store, policy, now)
        assert store.size_bytes() <= policy.max_bytes
        left = store.logs(LogQuery(limit=count))
        assert 0 < len(left) < count
        assert left[0].time_ns > base  # the oldest went first
        assert left[-1].time_ns == base + (count - 1) * step  # the newest stayed
    finally:
        store.close()
