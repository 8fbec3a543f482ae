"""`threadline funnel` and `threadline flows` against a real server over scripted shoppers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from click.testing import CliRunner

from support.journey_script import FUNNEL, WINDOW_END_MS, shoppers
from support.live_server import LiveServer, live_server
from threadline.cli import journeys
from threadline.server import journey_query
from threadline.server.batch import SpanBatch

WIDE: Final = {"COLUMNS": "200"}
WINDOW: Final = ["--window", "1h", "--end", str(WINDOW_END_MS)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db: Path = tmp_path_factory.mktemp("cli-journeys") / "spans.duckdb"
    with live_server(db) as running:
        document = {"funnels": [{"name": "checkout", "steps": list(FUNNEL)}]}
        assert httpx.put(f"{running.api_url}/funnels", json=document).status_code == 200
        running.store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        yield running


def test_funnel_prints_conversion_and_names_the_payments_error(server: LiveServer) -> None:
    """The table shows 125 journeys paying; the drop-off line names payments first."""
    result = CliRunner().invoke(
        journeys.funnel, ["checkout", *WINDOW, "--server", server.url], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "65.8%" in result.output  # 125 of 190 went from checkout to pay
    assert (
        "journeys that met a payments error at POST /checkout stopped 4.9× as often"
        in result.output
    )
    # The weaker cause follows, with examples of trial shoppers who stopped.
    assert (
        "also: journeys with app.plan=trial at POST /checkout stopped 2.4× as often"
        in result.output
    )
    as_json = CliRunner().invoke(
        journeys.funnel, ["checkout", *WINDOW, "--json", "--server", server.url]
    )
    assert [s["journeys"] for s in json.loads(as_json.output)["steps"]] == [200, 190, 190, 125]


def test_funnel_says_when_what_makes_users_leave_was_found_on_a_sample(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More journeys than the sample holds: the counts stay exact and the text says
    how many journeys the factors were found on; with fewer, it says nothing."""
    plain = CliRunner().invoke(
        journeys.funnel, ["checkout", *WINDOW, "--server", server.url], env=WIDE
    )
    assert "sample" not in plain.output
    monkeypatch.setattr(journey_query, "LEAVING_SAMPLE", 120)
    result = CliRunner().invoke(
        journeys.funnel, ["checkout", *WINDOW, "--server", server.url], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "found on 120 of the 200 journeys (a sample; the counts are exact)" in result.output
    assert "POST /checkout → POST /pay: 65 stopped" in result.output
    assert "of 120 sampled journeys)" in result.output


def test_flows_prints_top_transitions_and_drop_offs(server: LiveServer) -> None:
    """The busiest transition and the step most journeys stopped at are listed."""
    result = CliRunner().invoke(journeys.flows, [*WINDOW, "--server", server.url], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "web POST /cart" in result.output
    assert "190" in result.output
    assert "125" in result.output


def test_an_unknown_funnel_is_a_clear_error(server: LiveServer) -> None:
    """A funnel that does not exist exits non-zero naming it."""
    result = CliRunner().invoke(journeys.funnel, ["nope", "--server", server.url])
    assert result.exit_code != 0
    assert "nope" in result.output


def test_attr_chooses_the_journeys_of_trial_shoppers(server: LiveServer) -> None:
    """``--attr app.plan=trial``: 30 shoppers enter the funnel, 10 pay; the heading
    names the filter. A user id is refused by the server, a bad pair by the command."""
    args = [*WINDOW, "--attr", "app.plan=trial", "--server", server.url]
    result = CliRunner().invoke(journeys.funnel, ["checkout", *args, "--json"])
    assert result.exit_code == 0, result.output
    assert [s["journeys"] for s in json.loads(result.output)["steps"]] == [30, 30, 30, 10]
    shown = CliRunner().invoke(journeys.flows, args, env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "top transitions (journeys with app.plan=trial)" in shown.output
    assert "web POST /checkout" in shown.output
    refused = CliRunner().invoke(
        journeys.flows, [*WINDOW, "--attr", "user.id=user-3", "--server", server.url]
    )
    assert refused.exit_code != 0
    assert "names a person" in refused.output
    bad = CliRunner().invoke(journeys.flows, ["--attr", "plan", "--server", server.url])
    assert bad.exit_code != 0
    assert "KEY=VALUE" in bad.output
