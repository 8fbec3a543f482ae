"""/api/slos and /api/alerts on a real server: validation naming the field, ETags,
persistence, admin-only writes, an SLO's status and the alerts list."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.alerting.schedule import evaluator_lease
from threadline.server.batch import SpanBatch
from threadline.server.lease import Lease
from threadline.server.model import StatusCode
from threadline.settings import ConfigError

SLOS: Final = {
    "slos": [
        {
            "name": "checkout-errors",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        },
        {
            "name": "checkout-fast",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.95,
            "window": "30d",
            "indicator": "latency",
            "threshold": "300ms",
        },
    ]
}
MINUTE: Final = 60_000_000_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        yield running


def test_put_then_get_with_etags(server: LiveServer) -> None:
    """A valid document is served back under a new ETag; If-None-Match answers 304."""
    empty = httpx.get(f"{server.api_url}/slos")
    assert empty.json() == {"slos": []}
    put = httpx.put(f"{server.api_url}/slos", json=SLOS)
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] != empty.headers["ETag"]
    assert httpx.get(f"{server.api_url}/slos").json() == SLOS
    again = httpx.get(f"{server.api_url}/slos", headers={"If-None-Match": put.headers["ETag"]})
    assert again.status_code == 304


def test_a_bad_document_is_400_naming_the_field_and_changes_nothing(server: LiveServer) -> None:
    """The answer names the bad value's path; the SLOs in force stay."""
    httpx.put(f"{server.api_url}/slos", json=SLOS)
    bad = {"slos": [{**SLOS["slos"][0], "objective": 99}]}
    answer = httpx.put(f"{server.api_url}/slos", json=bad)
    assert answer.status_code == 400
    assert answer.json()["field"] == "slos[0].objective"
    assert "between 0 and 1" in answer.json()["error"]
    not_json = httpx.put(f"{server.api_url}/slos", content=b"{")
    assert not_json.status_code == 400
    assert not_json.json()["field"] == "body"
    assert httpx.get(f"{server.api_url}/slos").json() == SLOS


def test_a_stale_if_match_is_412(server: LiveServer) -> None:
    """Two editors holding the same ETag cannot both replace the SLOs."""
    etag = httpx.get(f"{server.api_url}/slos").headers["ETag"]
    first = httpx.put(f"{server.api_url}/slos", json=SLOS, headers={"If-Match": etag})
    assert first.status_code == 200
    second = httpx.put(f"{server.api_url}/slos", json={"slos": []}, headers={"If-Match": etag})
    assert second.status_code == 412
    assert httpx.get(f"{server.api_url}/slos").json() == SLOS


def test_slos_survive_a_restart(tmp_path: Path) -> None:
    """The document is saved in the store and served after a restart, same ETag."""
    db = tmp_path / "spans.duckdb"
    with live_server(db) as first:
        etag = httpx.put(f"{first.api_url}/slos", json=SLOS).headers["ETag"]
    assert not (tmp_path / "spans.duckdb.slos.json").exists()
    with live_server(db) as second:
        served = httpx.get(f"{second.api_url}/slos")
    assert served.json() == SLOS
    assert served.headers["ETag"] == etag


def test_only_admins_write_slos(tmp_path: Path) -> None:
    """A viewer token reads the SLOs but cannot replace them."""
    tokens = "viewer:viewer-token-0123456789,admin:admin-token-0123456789"
    with live_server(tmp_path / "spans.duckdb", tokens=tokens) as server:
        viewer = {"Authorization": "Bearer viewer-token-0123456789"}
        assert httpx.get(f"{server.api_url}/slos", headers=viewer).status_code == 200
        refused = httpx.put(f"{server.api_url}/slos", json=SLOS, headers=viewer)
        assert refused.status_code == 403
        admin = {"Authorization": "Bearer admin-token-0123456789"}
        assert httpx.put(f"{server.api_url}/slos", json=SLOS, headers=admin).status_code == 200


def test_slo_status_and_alerts(server: LiveServer) -> None:
    """An SLO's status has its budget and burns; a firing page is listed in /api/alerts."""
    httpx.put(f"{server.api_url}/slos", json=SLOS)
    now = time.time_ns()
    spans = [
        span_record(
            f"{n:032x}",
            "e1",
            None,
            "shop",
            "POST /checkout",
            now - (n % 20) * MINUTE,
            now - (n % 20) * MINUTE + 50_000_000,
            **({"status": StatusCode.ERROR} if n % 2 else {}),
        )
        for n in range(400)
    ]
    server.store.write(SpanBatch.from_records(spans)).result(timeout=30)
    status = httpx.get(f"{server.api_url}/slos/checkout-errors").json()
    assert status["events"] == 400
    assert status["bad"] == 200
    assert status["budget_remaining"] == pytest.approx(1 - 200 / 4)
    burns = {b["window"]: b["burn"] for b in status["burn_rates"]}
    assert burns["1h"] == pytest.approx(50.0)
    fast = httpx.get(f"{server.api_url}/slos/checkout-fast").json()
    assert fast["effective_threshold_ms"] == pytest.approx(300, rel=0.021)
    assert httpx.get(f"{server.api_url}/slos/nothing").status_code == 404

    evaluator: Evaluator = server.app.state.slo_evaluator
    evaluator.tick()
    alerts = httpx.get(f"{server.api_url}/alerts").json()
    firing = {(a["slo"], a["alert"]) for a in alerts["firing"]}
    assert ("checkout-errors", "page") in firing
    assert alerts["delivery_failures"] == []
    status = httpx.get(f"{server.api_url}/slos/checkout-errors").json()
    assert {a["alert"] for a in status["alerts"]} >= {"page"}


def test_alerts_name_the_server_holding_the_evaluators_lease(tmp_path: Path) -> None:
    """The schedule takes the lease as the server starts; /api/alerts names its holder
    (``hostname:pid:random``), and another process asking for it is refused."""
    with live_server(tmp_path / "spans.duckdb", lifespan=True) as server:
        lease: Lease = server.app.state.evaluator_lease
        deadline = time.monotonic() + 10
        while not lease.held() and time.monotonic() < deadline:
            time.sleep(0.02)
        evaluator = httpx.get(f"{server.api_url}/alerts").json()["evaluator"]
        assert evaluator["holder"] == lease.holder
        assert evaluator["this_server"] is True
        assert evaluator["expired"] is False
        assert evaluator["holder"].split(":")[1] == str(os.getpid())
        other = evaluator_lease(server.store, 30.0, holder="other:1:ffffff", clock=time.time_ns)
        assert not other.hold()


def test_a_bad_slos_file_stops_the_server_naming_the_field(tmp_path: Path) -> None:
    """A file to import that does not parse is refused at start, not silently emptied."""
    db = tmp_path / "spans.duckdb"
    (tmp_path / "spans.duckdb.slos.json").write_text(
        json.dumps({"slos": [{**SLOS["slos"][0], "window": "forever"}]})
    )
    with pytest.raises(ConfigError, match=r"slos\[0\]\.window in .*slos.json"), live_server(db):
        pass
