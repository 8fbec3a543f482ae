"""The drill scheduler on a real DuckDB store against a real loopback HTTP service:
runs are bounded by the worker count, a probe never overlaps itself, results are
stored, and ``stop`` ends a run waiting for its traces at once without recording it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from support.threaded_http import serving_in_thread
from threadline.probing.definitions import ProbeDocument, parse
from threadline.server.drills.scheduler import DrillScheduler
from threadline.server.lease import Lease
from threadline.server.storage.duckdb import DuckDBStore

HOLD_S: Final = 0.3


class Service:
    """Answers every GET after HOLD_S, counting requests in flight per path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.most_at_once = 0
        self.most_per_path: dict[str, int] = {}
        self.requests = 0


@contextmanager
def service() -> Iterator[tuple[str, Service]]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.requests += 1
                state.in_flight[self.path] = state.in_flight.get(self.path, 0) + 1
                state.most_at_once = max(state.most_at_once, sum(state.in_flight.values()))
                state.most_per_path[self.path] = max(
                    state.most_per_path.get(self.path, 0), state.in_flight[self.path]
                )
            time.sleep(HOLD_S)
            with state.lock:
                state.in_flight[self.path] -= 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving_in_thread(server, name="probed-service"):
        yield f"http://127.0.0.1:{server.server_address[1]}", state


def document(url: str, names: tuple[str, ...], *, wait: str = "0.5s") -> ProbeDocument:
    return parse(
        {
            "probes": [
                {"name": name, "interval": "1s", "wait": wait, "url": f"{url}/{name}"}
                for name in names
            ]
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    yield opened
    opened.close()


def test_runs_are_bounded_and_never_overlap_themselves(store: DuckDBStore) -> None:
    """Three probes due every second on one worker: never two requests at once, and
    every probe gets its runs stored (failed: the service sends no traces)."""
    with service() as (url, state):
        probes = document(url, ("a", "b", "c"))
        scheduler = DrillScheduler(
            store, lambda: probes, trace_url=lambda t: f"/trace/{t}", workers=1
        )
        scheduler.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if {r.probe for r in store.drill_results()} == {"a", "b", "c"}:
                    break
                time.sleep(0.1)
        finally:
            scheduler.stop()
    assert state.most_at_once == 1
    results = store.drill_results()
    assert {r.probe for r in results} == {"a", "b", "c"}
    assert all(not r.passed and r.problems[0].check == "missing-trace" for r in results)
    assert "FAIL a" in next(r.verdict for r in results if r.probe == "a")


def test_two_workers_run_two_probes_at_once_but_one_probe_once(store: DuckDBStore) -> None:
    """With two workers two probes overlap; a probe's own runs never do."""
    with service() as (url, state):
        probes = document(url, ("a", "b"), wait="0.2s")
        scheduler = DrillScheduler(store, lambda: probes, trace_url=str, workers=2)
        scheduler.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(store.drill_results()) < 6:
                time.sleep(0.1)
        finally:
            scheduler.stop()
    assert state.most_at_once == 2
    assert set(state.most_per_path.values()) == {1}


def test_only_the_lease_holder_runs_the_probes(store: DuckDBStore) -> None:
    """Two servers' schedulers on one store: the one whose process holds the evaluator's
    lease runs the probe, the other none; once the lease changes hands, the other runs it."""

    def lease(holder: str) -> Lease:
        return Lease(store, "evaluator", holder=holder, ttl_ns=60 * 10**9, margin_ns=10**9)

    a, b = lease("a:1:aaaaaa"), lease("b:2:bbbbbb")
    ran: dict[str, int] = {"a": 0, "b": 0}

    def counting(name: str, held: Lease) -> DrillScheduler:
        def count(*_: object) -> None:
            ran[name] += 1

        return DrillScheduler(
            store, lambda: probes, trace_url=str, on_result=count, may_run=held.held
        )

    with service() as (url, _):
        probes = document(url, ("p",), wait="0.2s")
        first, second = counting("a", a), counting("b", b)
        assert a.hold()
        assert not b.hold()
        first.start()
        second.start()
        try:
            deadline = time.monotonic() + 30
            while ran["a"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ran["a"] >= 2
            assert ran["b"] == 0
            a.release()
            assert b.hold()
            ran_by_a = ran["a"] + 1  # a run of A's may have been under way
            while ran["b"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            first.stop()
            second.stop()
    assert ran["b"] >= 2
    assert ran["a"] <= ran_by_a


def test_stop_ends_a_run_waiting_for_traces_without_recording_it(store: DuckDBStore) -> None:
    """A run waiting up to a minute for traces ends within a second of ``stop``."""
    with service() as (url, state):
        probes = document(url, ("slow",), wait="60s")
        scheduler = DrillScheduler(store, lambda: probes, trace_url=str)
        scheduler.start()
        deadline = time.monotonic() + 10
        while state.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(HOLD_S + 0.3)  # the request answered: the run now waits for traces
        assert scheduler.running() == frozenset({"slow"})
        began = time.monotonic()
        scheduler.stop()
        stopped_in = time.monotonic() - began
        time.sleep(0.5)
    assert stopped_in < 2.0
    assert store.drill_results() == []


def test_bad_scheduler_settings_are_refused(store: DuckDBStore) -> None:
    with pytest.raises(ValueError, match="drill_concurrency"):
        DrillScheduler(store, ProbeDocument, trace_url=str, workers=0)
    with pytest.raises(ValueError, match="drill_history"):
        DrillScheduler(store, ProbeDocument, trace_url=str, keep=0)


def test_the_server_stops_its_drills_on_shutdown(tmp_path: Path) -> None:
    """A server stopping while a drill waits a minute for traces stops at once and
    leaves no drill thread running."""
    with service() as (url, state):
        document = {"probes": [{"name": "slow", "interval": "1m", "wait": "60s", "url": url}]}
        began = 0.0
        with live_server(tmp_path / "spans.duckdb", lifespan=True) as server:
            httpx.put(f"{server.api_url}/probes", json=document).raise_for_status()
            deadline = time.monotonic() + 10
            while state.requests == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.app.state.drill_scheduler.running() == frozenset({"slow"})
            began = time.monotonic()
        stopped_in = time.monotonic() - began
    time.sleep(0.5)
    assert stopped_in < 5.0
    assert not [t.name for t in threading.enumerate() if t.name.startswith("threadline-drill")]
