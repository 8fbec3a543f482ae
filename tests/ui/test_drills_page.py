"""The drills page in a real browser, on a real server whose scheduled probe runs
against an SDK-instrumented two-service shop where checkout stopped propagating the
trace context: the page shows the drill firing, what broke between which services,
the verdict, and a link that opens the failing trace; hostile text stays text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Final

import httpx
import pytest

from support.alert_receivers import free_port
from support.drill_services import start_shop
from support.live_server import LiveServer, live_server
from threadline.server.drills.record import DrillProblem, DrillResult

from .conftest import PageWatch, _watched_page

WAIT_S: Final = 60.0
HOSTILE: Final = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def drilling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Probe ``checkout`` every second while checkout drops the trace context (its
    alert fires), and probe ``hostile`` whose stored result carries markup."""
    directory = tmp_path_factory.mktemp("drills-ui")
    with (
        live_server(directory / "spans.duckdb", lifespan=True) as server,
        ExitStack() as stack,
        httpx.Client(base_url=server.api_url, timeout=15) as api,
    ):
        shop = start_shop(stack, server.url, directory)
        httpx.put(f"{shop.checkout_url}/propagation", content=b"off").raise_for_status()
        closed = f"http://127.0.0.1:{free_port()}/"
        document = {
            "probes": [
                {
                    "name": "checkout",
                    "interval": "1s",
                    "wait": "5s",
                    "services": ["checkout", "payments"],
                    "steps": [{"name": "pay", "method": "POST", "url": f"{shop.checkout_url}/pay"}],
                },
                {"name": "hostile", "interval": "1d", "wait": "0.2s", "url": closed},
            ]
        }
        api.put("/probes", json=document).raise_for_status()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            drills = {d["name"]: d for d in api.get("/probes/results").json()["drills"]}
            firing = (drills["checkout"]["alert"] or {}).get("state") == "firing"
            if firing and drills["hostile"]["last_run"] is not None:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the checkout drill did not fire")
        server.store.save_drill_result(
            DrillResult(
                probe="hostile",
                started_ns=time.time_ns(),
                duration_ns=1_000_000,
                passed=False,
                journey_id=HOSTILE,
                trace_ids=("ab" * 16,),
                services=(HOSTILE,),
                problems=(DrillProblem("status", HOSTILE, HOSTILE, "ab" * 16, (HOSTILE, HOSTILE)),),
                verdict=HOSTILE,
            ),
            keep=10,
        )
        yield server


@pytest.fixture
def page(desktop_context: Any, drilling: LiveServer) -> Iterator[PageWatch]:
    with _watched_page(desktop_context, drilling.url) as watch:
        yield watch


def test_the_page_shows_the_firing_drill_and_its_last_failure(page: PageWatch) -> None:
    """Firing badge, the alert's summary, red runs in the strip, the verdict naming the
    broken hop; the failure's link opens the failing trace, which has no payments span."""
    page.goto("/drills")
    page.screenshot("drills-firing")
    panel = page.page.locator('section[data-drill="checkout"]')
    assert panel.get_attribute("data-state") == "firing"
    assert (
        "propagation broken between checkout and payments since"
        in panel.locator(".drill-alert").inner_text()
    )
    assert panel.locator(".drill-run.fail").count() >= 1
    verdict = panel.locator(".drill-verdict").inner_text()
    assert "broken-hop [checkout -> payments]" in verdict
    link = panel.locator("a.drill-trace")
    trace_id = link.get_attribute("href").rsplit("/", 1)[1]
    link.click()
    page.page.wait_for_url(f"**/trace/{trace_id}")
    page.wait_ready()
    rows = page.page.locator(".cell-name .svc").all_inner_texts()
    assert set(rows) == {"checkout"}  # payments never joined: the broken hop
    assert page.console_errors == []


def test_one_probe_and_hostile_text(page: PageWatch) -> None:
    """``?probe=`` shows that probe only; markup in a result is shown as text, never run."""
    page.goto("/drills?probe=hostile")
    assert page.page.locator("section.drill").count() == 1
    panel = page.page.locator('section[data-drill="hostile"]')
    assert HOSTILE in panel.locator(".drill-verdict").inner_text()
    assert page.page.locator("#main img").count() == 0
    assert page.dialogs == []
    assert page.console_errors == []


def test_drill_alerts_link_to_the_drills_page(page: PageWatch) -> None:
    """On /alerts the drill's firing alert links to its drill, not to an SLO page."""
    page.goto("/alerts")
    row = page.page.locator('#alerts-firing tr[data-alert="drill"][data-slo="checkout"]')
    assert row.locator("a").get_attribute("href") == "/drills?probe=checkout"
