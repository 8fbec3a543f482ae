"""A funnel-step journey SLO on the SLO pages' API: its step in the list, its budget
burndown and its burn rates over time, read from the journey steps."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.funnel_journeys import HOUR, MINUTE, PAY_CONVERSION, checkouts
from support.live_server import LiveServer, live_server
from threadline.server.batch import SpanBatch


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """26 hours ago 10 sessions checked out and paid; 50 minutes ago 20 checked out
    and only 10 paid."""
    with live_server(tmp_path / "spans.duckdb") as running:
        assert httpx.put(f"{running.api_url}/slos", json={"slos": [PAY_CONVERSION]}).is_success
        now = time.time_ns()
        spans = checkouts(now - 26 * HOUR, 10, 10, "a") + checkouts(now - 50 * MINUTE, 20, 10, "b")
        running.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        yield running


def test_funnel_step_slo_has_a_burndown_and_burn_series(server: LiveServer) -> None:
    """30 journeys, 10 that never paid: the burndown stays whole until 50 minutes ago
    and ends at the budget left; the latest hour's burn is 0.5 / 0.01 = 50 and the
    hour 26 hours ago, every journey paid, burns 0."""
    status = httpx.get(f"{server.api_url}/slos/pay-conversion").json()
    assert (status["events"], status["bad"]) == (30, 10)
    points = status["burndown"]
    assert len(points) == 61
    assert [p["bad"] for p in points] == sorted(p["bad"] for p in points)
    before = [p for p in points if p["at_ns"] < status["evaluated_ns"] - HOUR]
    assert {p["bad"] for p in before} == {0}
    assert points[-1]["bad"] == 10
    assert points[-1]["remaining"] == pytest.approx(status["budget_remaining"])
    assert status["budget_remaining"] == pytest.approx(1 - 10 / 0.3)
    series = {s["window"]: s["points"] for s in status["burn_series"]}
    hourly = series["1h"]
    assert len(hourly) == 72
    assert {b["at_ns"] - a["at_ns"] for a, b in itertools.pairwise(hourly)} == {HOUR}
    busy = [(p["events"], p["bad"], p["burn"]) for p in hourly if p["events"]]
    assert busy == [(10, 0, 0.0), (20, 10, pytest.approx(50.0))]
    assert [(p["events"], p["bad"]) for p in series["6h"] if p["events"]] == [(10, 0), (20, 10)]


def test_funnel_step_is_listed(server: LiveServer) -> None:
    """The SLO list names the step journeys should go on to."""
    listed = httpx.get(f"{server.api_url}/slo-status").json()["slos"]
    assert [(s["name"], s["operation"], s["reaches"]) for s in listed] == [
        ("pay-conversion", "POST /checkout", "POST /pay")
    ]
