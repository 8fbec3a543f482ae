"""Liveness and readiness probes of a real server on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.journey_script import T0, S, shoppers
from support.live_server import live_server
from threadline.demo.run import wait_for_spans_to_settle
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.storage.base import StoreHealth


def test_healthz_answers_while_the_process_runs(tmp_path: Path) -> None:
    """/healthz is 200 whenever the server process answers at all."""
    with live_server(tmp_path / "t.duckdb", lifespan=True) as server:
        response = httpx.get(f"{server.url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_a_writable_store(tmp_path: Path) -> None:
    """/readyz is 200 with the store's queue figures when spans can be ingested."""
    with live_server(tmp_path / "t.duckdb", lifespan=True) as server:
        response = httpx.get(f"{server.url}/readyz", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["store_writable"] is True
    assert body["pending_batches"] == 0
    assert body["max_pending_batches"] > 0
    assert body["unfolded_commits"] == 0


def test_readyz_is_503_when_the_store_cannot_take_writes(tmp_path: Path) -> None:
    """/readyz answers 503 and says why once the store no longer accepts writes."""
    with live_server(tmp_path / "t.duckdb", lifespan=True) as server:
        server.store.close()
        response = httpx.get(f"{server.url}/readyz", timeout=5)
    assert response.status_code == 503
    assert response.json()["problems"] == ["the store is closed"]


def test_a_full_write_queue_counts_as_saturated() -> None:
    """A store whose pending batches reach its limit is saturated (readiness fails)."""
    assert StoreHealth(True, 256, 256).saturated
    assert not StoreHealth(True, 255, 256).saturated


def test_the_demo_waits_for_the_fold_before_it_reads_error_origins(tmp_path: Path) -> None:
    """Spans settle for the demo's summary only once ``/readyz`` counts no unfolded
    commit: error origins are found at the fold, so the failed checkouts then name
    payments, where their error started (a count that merely holds still for a second
    comes before the writer's idle fold)."""
    with live_server(tmp_path / "t.duckdb", lifespan=True) as server:
        server.store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        assert wait_for_spans_to_settle(server.url) == server.store.counts().spans > 0
        assert httpx.get(f"{server.url}/readyz", timeout=5).json()["unfolded_commits"] == 0
        traces, _ = server.store.step_traces(TimeWindow(T0, T0 + 3600 * S))
    failed = [t for t in traces if t.failed]
    assert len(failed) == 60
    assert {t.error_origin for t in failed} == {"payments"}
