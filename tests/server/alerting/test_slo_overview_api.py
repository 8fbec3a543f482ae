"""What the SLO pages read, on a real server: the burndown, states for badges, example
traces, and the SLO gauges of ``/metrics`` parsed by prometheus_client's parsers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, StatusCode

MINUTE: Final = 60_000_000_000
HOUR: Final = 60 * MINUTE
OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
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
            "name": "search-errors",
            "service": "search",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        },
    ]
}


def checkouts(now: int) -> list[SpanRecord]:
    """100 checkouts 30 hours ago (20 failed), then 400 in the last 20 minutes (200 failed)."""
    old = [
        span_record(
            f"a{n:031x}", "e1", None, "shop", "POST /checkout",
            now - 30 * HOUR + n * 1_000_000, now - 30 * HOUR + n * 1_000_000 + 50_000_000,
            **({"status": StatusCode.ERROR} if n < 20 else {}),
        )
        for n in range(100)
    ]  # fmt: skip
    recent = [
        span_record(
            f"b{n:031x}", "e1", None, "shop", "POST /checkout",
            now - (n % 20) * MINUTE, now - (n % 20) * MINUTE + 50_000_000,
            **({"status": StatusCode.ERROR} if n % 2 else {}),
        )
        for n in range(400)
    ]  # fmt: skip
    searches = [
        span_record(f"c{n:031x}", "e1", None, "search", "GET /q", now - n * MINUTE,
                    now - n * MINUTE + 10_000_000)
        for n in range(30)
    ]  # fmt: skip
    return old + recent + searches


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("slo-pages") / "spans.duckdb") as running:
        assert httpx.put(f"{running.api_url}/slos", json=SLOS).status_code == 200
        running.store.write(SpanBatch.from_records(checkouts(time.time_ns()))).result(timeout=30)
        yield running


def test_burndown_from_the_rollups(server: LiveServer) -> None:
    """500 events, 220 bad at 99% (5 allowed): untouched before 30h ago, −3 after the
    old failures, −43 now; every point is 12 hours apart and the last is the budget."""
    status = httpx.get(f"{server.api_url}/slos/checkout-errors").json()
    points = status["burndown"]
    assert len(points) == 61
    steps = {b["at_ns"] - a["at_ns"] for a, b in itertools.pairwise(points)}
    assert steps == {12 * HOUR}
    by_age = {round((points[-1]["at_ns"] - p["at_ns"]) / HOUR): p for p in points}
    assert by_age[36]["bad"] == 0
    assert by_age[36]["remaining"] == pytest.approx(1.0)
    assert by_age[24]["bad"] == 20
    assert by_age[24]["remaining"] == pytest.approx(-3.0)
    assert points[-1]["bad"] == 220
    assert points[-1]["remaining"] == pytest.approx(status["budget_remaining"])
    assert points[-1]["remaining"] == pytest.approx(-43.0)
    rules = {r["rule"]: r["windows"] for r in status["rules"]}
    assert rules == {"1h": ["1h", "5m"], "6h": ["6h", "30m"], "3d": ["3d", "6h"]}


def test_burn_series_over_the_last_three_days(server: LiveServer) -> None:
    """The 1h burn at every hour back from now and the 6h burn at every six hours,
    over three days: the latest hour holds the 400 recent checkouts (half failed: a
    burn of 50), the hour 30 hours ago the 100 old ones (20 failed: 20)."""
    status = httpx.get(f"{server.api_url}/slos/checkout-errors").json()
    series = {s["window"]: s["points"] for s in status["burn_series"]}
    assert sorted(series) == ["1h", "6h"]
    hourly, six_hourly = series["1h"], series["6h"]
    assert (len(hourly), len(six_hourly)) == (72, 12)
    assert {b["at_ns"] - a["at_ns"] for a, b in itertools.pairwise(hourly)} == {HOUR}
    assert {b["at_ns"] - a["at_ns"] for a, b in itertools.pairwise(six_hourly)} == {6 * HOUR}
    assert hourly[-1]["at_ns"] == status["evaluated_ns"]
    assert (hourly[-1]["events"], hourly[-1]["bad"]) == (400, 200)
    assert hourly[-1]["burn"] == pytest.approx(50.0)
    burn_1h = next(b["burn"] for b in status["burn_rates"] if b["window"] == "1h")
    assert hourly[-1]["burn"] == pytest.approx(burn_1h)
    busy = [(p["events"], p["bad"], p["burn"]) for p in hourly if p["events"]]
    assert busy == [(100, 20, pytest.approx(20.0)), (400, 200, pytest.approx(50.0))]
    assert [p["burn"] for p in hourly].count(None) == 70
    assert [(p["events"], p["bad"]) for p in six_hourly if p["events"]] == [(100, 20), (400, 200)]


def test_states_for_badges(server: LiveServer) -> None:
    """A burning SLO fires once evaluated; a clean one is ok; ``service`` filters."""
    evaluator: Evaluator = server.app.state.slo_evaluator
    evaluator.tick()
    listed = httpx.get(f"{server.api_url}/slo-status").json()["slos"]
    states = {s["name"]: (s["state"], s["firing"]) for s in listed}
    assert states["checkout-errors"][0] == "firing"
    assert "page" in states["checkout-errors"][1]
    assert states["search-errors"] == ("ok", [])
    shop = httpx.get(f"{server.api_url}/slo-status", params={"service": "shop"}).json()["slos"]
    assert [s["name"] for s in shop] == ["checkout-errors"]
    assert httpx.get(f"{server.api_url}/slos/checkout-errors").json()["state"] == "firing"


def test_example_traces_are_failed_checkouts(server: LiveServer) -> None:
    """The last hour's failed checkouts, each an existing trace with an error."""
    answer = httpx.get(f"{server.api_url}/slos/checkout-errors/examples").json()
    assert answer["examples"]
    for example in answer["examples"]:
        assert example["error"] is True
        assert example["trace_id"].startswith("b")
        trace = httpx.get(f"{server.api_url}/traces/{example['trace_id']}")
        assert trace.status_code == 200
    assert httpx.get(f"{server.api_url}/slos/nothing/examples").status_code == 404


def test_slo_gauges_on_metrics(server: LiveServer) -> None:
    """Budget left, burn per window and the alerts' states, in both formats."""
    evaluator: Evaluator = server.app.state.slo_evaluator
    evaluator.tick()
    for accept, parse in (("text/plain", text_families), (OPENMETRICS, openmetrics_families)):
        body = httpx.get(f"{server.url}/metrics", headers={"Accept": accept}).text
        families = {f.name: f for f in parse(body)}
        remaining = {
            s.labels["slo"]: s.value
            for s in families["threadline_slo_budget_remaining_ratio"].samples
        }
        assert remaining["checkout-errors"] == pytest.approx(-43.0)
        assert remaining["search-errors"] == pytest.approx(1.0)
        burns = {
            (s.labels["slo"], s.labels["window"]): s.value
            for s in families["threadline_slo_burn_rate"].samples
        }
        assert burns[("checkout-errors", "1h")] == pytest.approx(50.0)
        assert burns[("search-errors", "5m")] == pytest.approx(0.0)
        assert {w for slo, w in burns if slo == "checkout-errors"} == {
            "5m", "30m", "1h", "6h", "1d", "3d"
        }  # fmt: skip
        alert = {
            (s.labels["alert"], s.labels["state"]): s.value
            for s in families["threadline_slo_alert"].samples
            if s.labels["slo"] == "checkout-errors"
        }
        assert alert[("page", "firing")] == 1.0
        assert alert[("page", "pending")] == 0.0
        service = {s.labels["service"] for s in families["threadline_slo_objective_ratio"].samples}
        assert service == {"shop", "search"}


def test_no_gauges_before_the_first_evaluation(tmp_path: Path) -> None:
    """Figures are the evaluator's: none until it has evaluated."""
    with live_server(tmp_path / "spans.duckdb") as running:
        httpx.put(f"{running.api_url}/slos", json=SLOS)
        body = httpx.get(f"{running.url}/metrics").text
        families = {f.name: f for f in text_families(body)}
        assert families["threadline_slo_burn_rate"].samples == []
