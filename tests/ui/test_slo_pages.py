"""The SLO pages, the alerts page and SLO badges in a real browser, on a real server
whose checkout SLO fires and whose one webhook receiver refuses every delivery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest

from support.alert_receivers import free_port
from support.funnel_journeys import PAY_CONVERSION, checkouts
from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.server.alerting.evaluator import Evaluator
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode

from .conftest import PageWatch, _watched_page

MINUTE: Final = 60_000_000_000
WAIT_S: Final = 30.0
HOSTILE: Final = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
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
            "name": "hostile",
            "service": HOSTILE,
            "operation": HOSTILE,
            "objective": 0.99,
            "window": "1d",
            "indicator": "errors",
        },
        {**PAY_CONVERSION, "service": "web"},
    ]
}


@pytest.fixture(scope="module")
def burning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """400 checkouts over the last 20 minutes, half failed; the page alert fires and its
    delivery to a closed port fails."""
    closed = f"http://127.0.0.1:{free_port()}/hook"
    db = tmp_path_factory.mktemp("slo-ui") / "spans.duckdb"
    with live_server(db, lifespan=True, alert_webhook_urls=closed) as server:
        assert httpx.put(f"{server.api_url}/slos", json=SLOS).status_code == 200
        now = time.time_ns()
        spans = [
            span_record(
                f"{n + 1:032x}", "e1", None, "shop", "POST /checkout",
                now - (n % 20) * MINUTE, now - (n % 20) * MINUTE + 50_000_000,
                **({"status": StatusCode.ERROR} if n % 2 else {}),
            )
            for n in range(400)
        ]  # fmt: skip
        # 20 journeys check out at web 50 minutes ago; 10 go on to pay.
        spans += checkouts(now - 50 * MINUTE, 20, 10, "f", service="web")
        server.store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        evaluator: Evaluator = server.app.state.slo_evaluator
        evaluator.tick()
        deadline = time.monotonic() + WAIT_S
        while not httpx.get(f"{server.api_url}/alerts").json()["delivery_failures"]:
            assert time.monotonic() < deadline, "the refused delivery never showed"
            time.sleep(0.1)
        yield server


@pytest.fixture
def page(desktop_context: Any, burning: LiveServer) -> Iterator[PageWatch]:
    with _watched_page(desktop_context, burning.url) as watch:
        yield watch


def test_slo_page_shows_burn_figures_and_example_traces(page: PageWatch) -> None:
    """A firing SLO: its badge, budget, burndown, burn per window with thresholds, the
    firing page alert, and example traces that open their trace pages."""
    page.goto("/slos/checkout-errors")
    assert page.page.inner_text("#slo-state") == "firing"
    assert "of the error budget left" in page.page.inner_text("#slo-figures")
    assert page.page.locator("#slo-charts path.series.burndown").count() == 1
    assert page.page.locator("#slo-charts .burn-bar").count() == 6
    assert page.page.locator("#slo-charts .burn-bar line.threshold").count() == 6
    burn_1h = page.page.inner_text("#burn-table tr[data-window='1h'] td.burn")
    assert burn_1h == "50.0×"  # half failing at 99%: 0.5 / 0.01
    assert "14.4×" in page.page.inner_text("#burn-table tr[data-window='5m']")
    assert "fires" in page.page.inner_text("#rule-table")
    assert "page" in page.page.inner_text("#slo-alerts")
    examples = page.page.locator("#slo-examples a.example")
    assert examples.count() > 0
    trace_id = examples.first.get_attribute("data-trace-id")
    assert trace_id is not None
    assert int(trace_id, 16) % 2 == 0  # the odd-numbered (n + 1 even) checkouts failed
    page.screenshot("slo-checkout-errors")
    examples.first.click()
    page.page.wait_for_url(f"**/trace/{trace_id}")
    page.wait_ready()
    assert page.console_errors == []


def test_slo_page_charts_burn_rates_over_time(page: PageWatch) -> None:
    """The 1h and 6h burn over the last three days, one point per window, against the
    page and ticket thresholds; the latest hour burns 50×."""
    page.goto("/slos/checkout-errors")
    chart = page.page.locator("#slo-charts figure.burn-series")
    assert chart.locator("g.burn-line[data-window='1h']").get_attribute("data-points") == "72"
    assert chart.locator("g.burn-line[data-window='6h']").get_attribute("data-points") == "12"
    factors = chart.locator("g.burn-threshold").evaluate_all("gs => gs.map(g => g.dataset.factor)")
    assert sorted(factors, key=float) == ["1", "6", "14.4"]
    latest = chart.locator("g.burn-line[data-window='1h'] circle.burn-dot").last
    assert "1h burn 50.0×" in (latest.locator("title").text_content() or "")
    assert page.console_errors == []


def test_funnel_step_slo_on_the_list_and_its_page(page: PageWatch) -> None:
    """A journey SLO on a funnel step names its step in the list and on its page, and
    has its burndown and burn series like any other."""
    page.goto("/slos")
    row = page.page.locator("#slo-table tr[data-slo='pay-conversion']")
    assert row.locator(".funnel-step").inner_text().strip() == "→ POST /pay"
    page.goto("/slos/pay-conversion")
    definition = page.page.inner_text("#slo-definition")
    assert "journeys that take web POST /checkout go on to POST /pay" in definition
    assert page.page.locator("#slo-charts path.series.burndown").count() == 1
    chart = page.page.locator("#slo-charts figure.burn-series")
    assert chart.locator("circle.burn-dot").count() > 0
    page.screenshot("slo-pay-conversion")
    assert page.console_errors == []


def test_alerts_page_lists_the_firing_alert_and_the_delivery_failure(page: PageWatch) -> None:
    """Firing: checkout-errors' page alert; receivers: webhook-1 with its error."""
    page.goto("/alerts")
    firing = page.page.inner_text("#alerts-firing")
    assert "checkout-errors" in firing
    assert page.page.locator("#alerts-firing tr[data-alert='page']").count() == 1
    row = page.page.locator("#receiver-table tr[data-receiver='webhook-1']")
    assert "Connect" in row.locator(".delivery-failure").inner_text()  # the refused connection
    page.page.click("#alerts-firing a >> text=checkout-errors")
    page.page.wait_for_url("**/slos/checkout-errors")
    page.screenshot("alerts")
    assert page.console_errors == []


def test_hostile_slo_labels_and_names_are_text(page: PageWatch) -> None:
    """Markup in an SLO's service or in the URL is shown as text; nothing runs."""
    page.goto("/slos")
    row = page.page.locator("#slo-table tr[data-slo='hostile']")
    assert HOSTILE in row.inner_text()
    assert page.page.locator("#slo-table img").count() == 0
    page.goto("/slos/hostile")
    assert HOSTILE in page.page.inner_text("#slo-definition")
    assert page.page.locator("main img, main script").count() == 0
    page.goto("/slos/" + quote(HOSTILE, safe=""))
    assert HOSTILE in page.page.inner_text("h1")
    assert page.page.is_visible("#slo-error")
    assert page.page.locator("main img, main script").count() == 0
    assert page.dialogs == []
    # The only console error allowed is the browser's own line for the API's 404.
    assert all("404" in e for e in page.console_errors), page.console_errors


def test_badges_on_the_service_page_and_the_map(page: PageWatch) -> None:
    """The shop's page and its box on the map say its SLO fires; the badge links to it."""
    page.goto("/service/shop")
    page.page.wait_for_selector("body[data-ready-slos=true]")
    badge = page.page.locator("#service-slos a.slo-link[data-slo='checkout-errors']")
    assert badge.get_attribute("data-state") == "firing"
    assert "firing" in badge.inner_text()
    page.goto("/map")
    page.page.wait_for_selector("body[data-ready-slos=true]")
    node = page.page.locator("#map a.node[data-service=shop]")
    assert node.get_attribute("data-slo-state") == "firing"
    assert node.locator("circle.slo-dot.state-firing").count() == 1
    badge.page.click("#map-slos a.slo-link[data-slo='checkout-errors']")
    page.page.wait_for_url("**/slos/checkout-errors")
    assert page.console_errors == []


@pytest.mark.parametrize("path", ["/slos", "/slos/checkout-errors", "/alerts"])
def test_slo_pages_fit_a_phone(phone_context: Any, burning: LiveServer, path: str) -> None:
    """At 390 px the SLO pages scroll down, never sideways."""
    with _watched_page(phone_context, burning.url) as phone:
        phone.goto(path)
        overflow = phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        assert phone.console_errors == []


def test_an_empty_slo_name_leads_to_the_list(burning: LiveServer) -> None:
    """/slos/ is the list, not a page asking the API for a nameless SLO."""
    answer = httpx.get(f"{burning.url}/slos/", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/slos"
