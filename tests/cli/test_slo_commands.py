"""`threadline slo` and `threadline alerts` against a real server over a real DuckDB file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from click.testing import CliRunner

from support.funnel_journeys import PAY_CONVERSION, checkouts
from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.cli import alerting
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.batch import SpanBatch
from threadline.server.lease import Lease
from threadline.server.model import StatusCode

MINUTE: Final = 60_000_000_000
WIDE: Final = {"COLUMNS": "200"}
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
        # On another service, and guarded: the checkout SLO's figures stay its own.
        {**PAY_CONVERSION, "service": "web", "min_events": 1000},
    ]
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        assert httpx.put(f"{running.api_url}/slos", json=SLOS).status_code == 200
        now = time.time_ns()
        spans = [
            span_record(
                f"{n + 1:032x}",
                "f1",
                None,
                "shop",
                "POST /checkout",
                now - (n % 20) * MINUTE,
                now - (n % 20) * MINUTE + 50_000_000,
                **({"status": StatusCode.ERROR} if n % 4 == 0 else {}),
            )
            for n in range(400)
        ]
        spans += checkouts(now - 50 * MINUTE, 20, 10, "f", service="web")
        running.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        evaluator: Evaluator = running.app.state.slo_evaluator
        evaluator.tick()
        yield running


def test_slo_lists_each_slo_with_budget_burns_and_firing_alerts(server: LiveServer) -> None:
    """25% failing at 99% burns 25x: the list shows the burn and the firing page."""
    result = CliRunner().invoke(alerting.slo, ["--server", server.url], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "checkout-errors" in result.output
    assert "25.0" in result.output
    assert "page" in result.output


def test_slo_name_shows_rules_and_json(server: LiveServer) -> None:
    """One SLO in full: every rule's verdict; --json is the API's answer."""
    shown = CliRunner().invoke(alerting.slo, ["checkout-errors", "--server", server.url], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "firing" in shown.output
    assert "100 bad of 400 events" in shown.output
    as_json = CliRunner().invoke(
        alerting.slo, ["checkout-errors", "--json", "--server", server.url]
    )
    assert json.loads(as_json.output)["bad"] == 100
    missing = CliRunner().invoke(alerting.slo, ["nothing", "--server", server.url])
    assert missing.exit_code == 1
    assert "no SLO is named" in missing.output


def test_alerts_lists_firing_alerts(server: LiveServer) -> None:
    """The firing page and the ticket are listed under firing, and the server process
    holding the evaluator's lease is named."""
    lease: Lease = server.app.state.evaluator_lease
    assert lease.hold()
    result = CliRunner().invoke(alerting.alerts, ["--server", server.url], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "firing (2)" in result.output
    assert "checkout-errors" in result.output
    assert f"evaluated by: {lease.holder} since" in result.output
    assert "the server asked" in result.output


def test_slo_shows_a_funnel_step(server: LiveServer) -> None:
    """A journey SLO on a funnel step names the step it expects, listed and in full."""
    listed = CliRunner().invoke(alerting.slo, ["--server", server.url], env=WIDE)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "pay-conversion" in line)
    assert "web POST /checkout ⇒ POST /pay" in row
    shown = CliRunner().invoke(alerting.slo, ["pay-conversion", "--server", server.url], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "funnel step: journeys taking POST /checkout should go on to POST /pay" in shown.output
    assert "10 bad of 20 events" in shown.output
