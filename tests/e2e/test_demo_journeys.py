"""The demo's scripted shoppers through the real shop: map, funnel and why users left.

One run of the demo's users (``shopper_script``: a payments error at checkout makes
shoppers leave) against a real server and shop, read back through the API, the
command line and the flows page in headless Chromium. Expected counts come from
what each simulated journey requested, so they hold however many journeys fit in
the run's time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final

import httpx
import pytest
from click.testing import CliRunner

from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.missing import require_executable, require_module
from threadline.cli import journeys as journey_commands
from threadline.demo.processes import free_port
from threadline.demo.run import wait_for_spans_to_settle
from threadline.demo.shopper_script import DEMO_FUNNEL, DEMO_FUNNEL_NAME
from threadline.demo.stack import running_stack
from threadline.demo.users import JourneyRecord, UserDriver

pytestmark = pytest.mark.e2e

SEED: Final = 7
USERS: Final = 10
DURATION_S: Final = 15.0
USERS_FINISH_S: Final = 30.0
WAIT_MS: Final = 30_000
HEADLINE: Final = "journeys that met a payments error at POST /checkout stopped"


class DemoRun:
    """A finished run: the records of its journeys and the server still up."""

    def __init__(self, url: str, records: Sequence[JourneyRecord]) -> None:
        self.url = url
        self.records = records
        # A window over the whole (fresh) store, ending after the run.
        self.window = {"window": "1h", "end": str(time.time_ns() // 1_000_000 + 60_000)}

    def get(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}/api{path}", params={**self.window, **params}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    db = tmp_path_factory.mktemp("demo-journeys") / "threadline.duckdb"
    with running_stack(port=free_port(), db=db, seed=SEED, broker="sqlite") as stack:
        driver = UserDriver(stack.gateway_url, USERS, DURATION_S, SEED)
        driver.start()
        driver.join(DURATION_S + USERS_FINISH_S)
        assert not driver.running(), "simulated users did not finish"
        wait_for_spans_to_settle(stack.server_url)
        stack.stop_shop()
        wait_for_spans_to_settle(stack.server_url)
        yield DemoRun(stack.server_url, driver.records())


def label(operation: str) -> str:
    return f"gateway {operation}"


def reached(record: JourneyRecord) -> int:
    """How many funnel steps the journey reached, in order (a later trace may do)."""
    k = 0
    for step in record.steps:
        if k < len(DEMO_FUNNEL) and step == DEMO_FUNNEL[k]:
            k += 1
    return k


def test_the_map_shows_the_scripted_transitions(demo: DemoRun) -> None:
    """Every transition the users made, with its count, and nothing else; the step
    where most journeys with a payments error ended is checkout."""
    expected = Counter(
        (label(a), label(b))
        for r in demo.records
        for a, b in zip(r.steps, r.steps[1:], strict=False)
    )
    found = demo.get("/journeys/map")
    assert {(t["source"], t["target"]): t["count"] for t in found["transitions"]} == expected
    ended = Counter(label(r.steps[-1]) for r in demo.records)
    # A step no journey ended at is listed with 0 (a Counter has no such key).
    assert {s["id"]: s["ended"] for s in found["steps"] if s["ended"]} == ended
    assert {s["id"] for s in found["steps"]} == {
        label(step) for r in demo.records for step in r.steps
    }
    # Only checkouts fail, and only for shoppers the script has meet the error.
    checkout = next(s for s in found["steps"] if s["operation"] == "POST /checkout")
    assert checkout["errors"] == sum(r.errors for r in demo.records) > 0
    assert {s["id"]: s["errors"] for s in found["steps"] if s["errors"]} == {
        "gateway POST /checkout": checkout["errors"]
    }
    assert not [r for r in demo.records if r.session_id in str(found)]


def test_the_funnel_converts_as_scripted_and_names_the_payments_error(demo: DemoRun) -> None:
    """The demo's own funnel counts the journeys reaching each step; the checkout
    drop-off's first factor is the payments error, where the error started."""
    found = demo.get(f"/funnels/{DEMO_FUNNEL_NAME}")
    depth = [reached(r) for r in demo.records]
    expected = [sum(1 for d in depth if d > k) for k in range(len(DEMO_FUNNEL))]
    assert [s["journeys"] for s in found["steps"]] == expected
    assert found["steps"][3]["conversion"] == pytest.approx(expected[3] / expected[2])
    checkout = found["drop_offs"][2]
    assert (checkout["stopped"], checkout["went_on"]) == (expected[2] - expected[3], expected[3])
    first = checkout["factors"][0]
    assert (first["kind"], first["service"], first["significant"]) == ("error", "payments", True)
    met = [r for r in demo.records if reached(r) >= 3 and r.shopper and r.shopper.meets_error]
    assert first["stopped_with"] == sum(1 for r in met if reached(r) == 3)
    assert checkout["headline"].startswith(HEADLINE)


def test_the_plan_filter_keeps_trial_shoppers(demo: DemoRun) -> None:
    """The gateway stamps the plan on its entry span: ``attr=app.plan=trial`` keeps
    the journeys of trial shoppers, in the map and in the funnel."""
    trial = [r for r in demo.records if r.shopper and r.shopper.plan == "trial"]
    assert trial
    found = demo.get("/journeys/map", attr="app.plan=trial")
    assert sum(s["traces"] for s in found["steps"]) == sum(len(r.steps) for r in trial)
    funnel = demo.get(f"/funnels/{DEMO_FUNNEL_NAME}", attr="app.plan=trial")
    assert funnel["steps"][0]["journeys"] == sum(1 for r in trial if reached(r) > 0)


def test_the_commands_print_the_funnel_and_the_flows(demo: DemoRun) -> None:
    """`threadline funnel checkout` prints the headline; `threadline flows` the steps."""
    window = ["--window", "1h", "--end", demo.window["end"], "--server", demo.url]
    wide = {"COLUMNS": "200"}
    funnel = CliRunner().invoke(journey_commands.funnel, [DEMO_FUNNEL_NAME, *window], env=wide)
    assert funnel.exit_code == 0, funnel.output
    assert HEADLINE in funnel.output
    flows = CliRunner().invoke(journey_commands.flows, window, env=wide)
    assert flows.exit_code == 0, flows.output
    assert "gateway POST /cart" in flows.output
    assert "gateway POST /checkout" in flows.output


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_executable(str(CHROMIUM))
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            browser.close()


def test_the_flows_page_draws_the_demo_and_names_the_payments_error(
    demo: DemoRun, chromium: tuple[Any, list[str]]
) -> None:
    """/flows draws the shop's steps left to right and the funnel's headline."""
    page, errors = chromium
    page.goto(f"{demo.url}/flows?window=1h&end={demo.window['end']}")
    page.wait_for_selector("body[data-ready=true]")
    xs = {
        node.get_attribute("data-step"): float(node.locator("rect").get_attribute("x"))
        for node in page.locator("#flows g.node").all()
    }
    path = [label(step) for step in DEMO_FUNNEL]
    assert [xs[step] for step in path] == sorted(xs[step] for step in path)
    assert xs[path[0]] < xs[path[-1]]
    # The checkout drop-off's headline: an earlier drop-off may have one of its own
    # (a slow step, met by a dozen journeys on a busy run).
    checkout = page.locator("#leaving li.drop-off", has_text=f"{DEMO_FUNNEL[2]} → ")
    headline = checkout.locator("strong.headline").inner_text()
    assert headline.startswith(HEADLINE)
    assert errors == []
