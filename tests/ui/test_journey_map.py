"""The journey map page: scripted shoppers drawn left to right, and their funnel.

Its own server over ``support.journey_script``'s shoppers (a payments error at
checkout makes them leave), in the shared headless Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.journey_script import FUNNEL, WINDOW_END_MS, shoppers
from support.live_server import live_server
from threadline.server import journey_query
from threadline.server.batch import SpanBatch

from .conftest import PageWatch, _watched_page

PAGE: Final = f"/flows?window=1h&end={WINDOW_END_MS}"


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("ui-journeys") / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        document = {"funnels": [{"name": "checkout", "steps": list(FUNNEL)}]}
        assert httpx.put(f"{live.api_url}/funnels", json=document).status_code == 200
        yield live.url


@pytest.fixture
def flows(desktop_context: Any, shop_url: str) -> Iterator[PageWatch]:
    with _watched_page(desktop_context, shop_url) as watch:
        yield watch


def test_the_map_draws_steps_left_to_right_with_journey_counts(flows: PageWatch) -> None:
    """Four steps in the scripted order, transitions with their counts, stopped-here counts."""
    flows.goto(PAGE)
    steps = flows.page.locator("#flows g.node")
    assert steps.count() == 4
    xs = {
        s.get_attribute("data-step"): float(s.locator("rect").get_attribute("x"))
        for s in steps.all()
    }
    assert xs["web GET /product"] < xs["web POST /cart"] < xs["web POST /checkout"]
    assert xs["web POST /checkout"] < xs["web POST /pay"]
    counts = {
        (e.get_attribute("data-source"), e.get_attribute("data-target")): e.get_attribute(
            "data-count"
        )
        for e in flows.page.locator("#flows g.edge").all()
    }
    assert counts[("web POST /checkout", "web POST /pay")] == "125"
    checkout = flows.page.locator('#flows g.node[data-step="web POST /checkout"]')
    assert "65 stopped here" in (checkout.text_content() or "")
    flows.screenshot("journey-map")
    assert flows.console_errors == []


def test_the_funnel_panel_names_the_payments_error(flows: PageWatch) -> None:
    """The funnel shows 125 journeys paying and the checkout drop-off's headline."""
    flows.goto(PAGE)
    table = flows.page.inner_text("#funnel-table")
    assert "125" in table
    headline = flows.page.locator("#leaving strong.headline").first.inner_text()
    assert headline.startswith("journeys that met a payments error at POST /checkout stopped 4.9×")
    also = flows.page.locator("#leaving .also .factor").first.inner_text()
    assert also.startswith("journeys with app.plan=trial at POST /checkout stopped 2.4×")
    assert flows.page.locator("#leaving .also a").count() == 3
    assert "user-" not in flows.page.content()
    assert flows.console_errors == []


def test_the_funnel_panel_says_when_its_factors_come_from_a_sample(
    flows: PageWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More journeys than the sample holds: the panel says how many the factors were
    found on, and the stopped counts stay exact; with fewer, it says nothing."""
    flows.goto(PAGE)
    flows.page.wait_for_selector("#leaving strong.headline")
    assert flows.page.locator("#leaving .sampled").count() == 0
    monkeypatch.setattr(journey_query, "LEAVING_SAMPLE", 120)
    flows.goto(PAGE)
    sampled = flows.page.locator("#leaving .sampled")
    sampled.wait_for()
    assert sampled.inner_text() == (
        "Found on 120 of the 200 journeys (a sample; the counts are exact)."
    )
    assert "POST /checkout → POST /pay: 65 stopped" in flows.page.inner_text("#leaving")
    assert flows.console_errors == []


def test_the_attribute_filter_redraws_the_map_for_trial_shoppers(flows: PageWatch) -> None:
    """Typing app.plan=trial in the filter shows the 30 trial shoppers: 10 of them pay,
    and the funnel counts them alone; a user id is refused with the server's message."""
    flows.goto(PAGE)
    flows.page.fill("#flows-attr", "app.plan=trial")
    with flows.page.expect_navigation():
        flows.page.press("#flows-attr", "Enter")
    flows.wait_ready()
    assert "attr=app.plan%3Dtrial" in flows.page.url
    pay = flows.page.locator('#flows g.edge[data-target="web POST /pay"]')
    assert pay.get_attribute("data-count") == "10"
    assert flows.page.inner_text("#flows-summary").startswith("Journeys with app.plan=trial: ")
    rows = flows.page.locator("#funnel-table tbody tr")
    assert [r.locator("td").nth(1).inner_text() for r in rows.all()] == ["30", "30", "30", "10"]
    assert flows.console_errors == []
    flows.goto(f"{PAGE}&attr=user.id=user-3")
    assert "names a person" in flows.page.inner_text("#flows-error")
