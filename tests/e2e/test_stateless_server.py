"""A server keeps nothing of its own: a second `threadline serve` on the same ClickHouse
database (chDB here) serves every document and alert state the first one had."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from threadline.demo.processes import free_port
from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.store_url import StoreUrl

pytestmark = pytest.mark.e2e

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0
RULES: Final = {
    "rules": [{"name": "pay", "route": "/pay", "probability": 1.0}],
    "default": {"probability": 0.25},
}
SLOS: Final = {
    "slos": [
        {
            "name": "checkout-errors",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        }
    ]
}
FUNNELS: Final = {"funnels": [{"name": "checkout", "steps": ["GET /cart", "POST /checkout"]}]}
PROBES: Final = {"probes": [{"name": "home", "interval": "1h", "url": "http://127.0.0.1:9/"}]}
DOCUMENTS: Final[dict[str, dict[str, Any]]] = {
    "sampling": RULES,
    "slos": SLOS,
    "funnels": FUNNELS,
    "probes": PROBES,
}


@contextmanager
def _serve(store: str, cwd: Path) -> Iterator[str]:
    """A `threadline serve` process on ``store``; yields its API URL, stops it gracefully."""
    port = free_port()
    # No threadline.toml in ``cwd``: nothing configured, every document comes from the store.
    environment = {k: v for k, v in os.environ.items() if k != "THREADLINE_CONFIG"}
    # The evaluator must not move the alert state while the test compares it.
    environment["THREADLINE_SLO_EVALUATION_INTERVAL_S"] = "3600"
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "threadline", "serve", "--port", str(port), "--store", store],
            cwd=cwd,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{api}/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"threadline serve did not start: {log.read_text()[-2000:]}")
        yield api
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=STOP_TIMEOUT_S)


def _served(api: str) -> dict[str, tuple[Any, str]]:
    """Each kept document as the server answers it, with its ETag."""
    answers = {name: httpx.get(f"{api}/{name}", timeout=10) for name in DOCUMENTS}
    assert all(a.status_code == 200 for a in answers.values()), answers
    return {name: (a.json(), a.headers["ETag"]) for name, a in answers.items()}


def _firing(api: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{api}/alerts", timeout=10)
    assert alerts.status_code == 200, alerts.text
    return [a for a in alerts.json()["firing"] if a["slo"] == "checkout-errors"]


def test_a_second_server_on_the_same_database_serves_what_the_first_had(tmp_path: Path) -> None:
    """Rules, SLOs, funnels and probes PUT to one process, and an alert state in the
    store, are served by the next process on the chDB directory, with the same ETags."""
    directory = tmp_path / "chdb"
    store = f"chdb://{directory}"
    seeded = ClickHouseStore(StoreUrl(backend="chdb", path=directory))
    page = AlertRecord(
        "checkout-errors",
        "page",
        AlertState.FIRING,
        active_since_ns=time.time_ns() - 60_000_000_000,
        updated_ns=time.time_ns(),
        firing_since_ns=time.time_ns(),
        summary="burn 14.4x over 1h and 5m",
        labels=(("service", "shop"), ("severity", "page")),
    )
    try:
        seeded.save_alert_states([page])
    finally:
        seeded.close()

    with _serve(store, tmp_path) as first:
        before = _served(first)
        for name, document in DOCUMENTS.items():
            put = httpx.put(
                f"{first}/{name}",
                json=document,
                headers={"If-Match": before[name][1]},
                timeout=30,
            )
            assert put.status_code == 200, (name, put.text)
        had = _served(first)
        alerts_had = _firing(first)
    assert alerts_had, "the first server did not serve the stored alert"
    assert all(had[name][1] != before[name][1] for name in DOCUMENTS)
    assert not list(tmp_path.glob("*.json")), "a document went to a file, not the store"

    with _serve(store, tmp_path) as second:
        assert _served(second) == had
        assert _firing(second) == alerts_had
        # The second process also holds the ETags the first gave out: a stale one is refused.
        stale = httpx.put(
            f"{second}/slos", json={"slos": []}, headers={"If-Match": before["slos"][1]}
        )
        assert stale.status_code == 412
