"""`threadline probes` against a real server over a real DuckDB file holding drill results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from click.testing import CliRunner

from support.live_server import LiveServer, live_server
from threadline.cli import probe_results
from threadline.server.drills.record import DrillProblem, DrillResult

WIDE: Final = {"COLUMNS": "200"}
SECOND: Final = 1_000_000_000
PROBES: Final = {
    "probes": [
        {"name": "checkout", "interval": "1m", "url": "http://127.0.0.1:9/pay"},
        {"name": "browse", "interval": "5m", "url": "http://127.0.0.1:9/"},
    ]
}


def result(at_s: int, *, passed: bool) -> DrillResult:
    problem = DrillProblem(
        "broken-hop", "checkout called payments but no span joined", "pay", "c" * 32,
        ("checkout", "payments"),
    )  # fmt: skip
    return DrillResult(
        probe="checkout",
        started_ns=1_767_264_120 * SECOND + at_s * SECOND,
        duration_ns=SECOND,
        passed=passed,
        journey_id="probe-1",
        trace_ids=("c" * 32,),
        services=("checkout",),
        problems=() if passed else (problem,),
        verdict="PASS"
        if passed
        else "FAIL checkout: 1 problem(s)\n  broken-hop [checkout -> payments]",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        assert httpx.put(f"{running.api_url}/probes", json=PROBES).status_code == 200
        running.store.save_drill_result(result(0, passed=False), keep=10)
        running.store.save_drill_result(result(60, passed=True), keep=10)
        yield running


def test_probes_lists_state_and_last_failure(server: LiveServer) -> None:
    """Each probe with its state and counts; the last failure's summary and verdict."""
    ran = CliRunner().invoke(probe_results.probes, ["--server", server.url], env=WIDE)
    assert ran.exit_code == 0, ran.output
    lines = ran.output.splitlines()
    checkout = next(line for line in lines if line.strip().startswith("checkout "))
    browse = next(line for line in lines if line.strip().startswith("browse "))
    assert "passing" in checkout
    assert "1 passed, 1 failed" in checkout
    assert "waiting" in browse
    assert "checkout: propagation broken between checkout and payments" in ran.output
    assert "broken-hop [checkout -> payments]" in ran.output


def test_probes_json_and_one_probe(server: LiveServer) -> None:
    ran = CliRunner().invoke(
        probe_results.probes, ["checkout", "--runs", "1", "--json", "--server", server.url]
    )
    assert ran.exit_code == 0, ran.output
    (drill,) = json.loads(ran.output)["drills"]
    assert [r["passed"] for r in drill["history"]] == [True]
    assert drill["last_failure"]["trace_id"] == "c" * 32


def test_an_unknown_probe_is_an_error_naming_it(server: LiveServer) -> None:
    ran = CliRunner().invoke(probe_results.probes, ["nope", "--server", server.url])
    assert ran.exit_code == 1
    assert "no probe is named 'nope'" in ran.output
