"""Retention: old spans and spans over the size cap are deleted on a schedule, while
ingest and queries go on."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.processes import threadline_serve
from threadline.server.batch import SpanBatch
from threadline.server.retention import RetentionPolicy, enforce, parse_span_of_time
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ConfigError, ServerSettings

HOUR_NS: Final = 3600 * 10**9
DAY_NS: Final = 24 * HOUR_NS
DELETION_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0


def spans(count: int, start_ns: int, *, prefix: int, step_ns: int = 1000) -> SpanBatch:
    """``count`` one-span traces starting at ``start_ns``, ``step_ns`` apart."""
    starts = [start_ns + n * step_ns for n in range(count)]
    columns: dict[str, list[Any]] = {
        "trace_id": [f"{prefix:08x}{n:024x}" for n in range(count)],
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
        "session_id": [None] * count,
        "user_id": [None] * count,
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


def test_size_cap_deletes_the_oldest_spans_first(tmp_path: Path) -> None:
    """Over max_db_bytes the oldest spans go until the store is back under the cap."""
    now = time.time_ns()
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        for part in range(4):
            store.write(spans(100_000, now - (4 - part) * HOUR_NS, prefix=part)).result()
        size = store.size_bytes()
        policy = RetentionPolicy(max_bytes=size // 2)
        deleted = 0
        # Each run takes one measured step towards the cap; blocks are freed whole,
        # and the rollup tables hold a few of their own, so it may take a few.
        for _ in range(5):
            deleted += enforce(store, policy, now).by_size
            if store.size_bytes() <= policy.max_bytes:
                break
        assert store.size_bytes() <= size // 2
        assert 0 < deleted < 400_000
        oldest_left = store.start_ns_quantile(0.0)
        assert oldest_left is not None
        assert oldest_left > now - 4 * HOUR_NS  # the oldest went first
        assert store.counts().spans == 400_000 - deleted
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
        time.sleep(0.5)  # a few more retention runs with ingest going on
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
