"""The journey pages: the list of sessions and one session's steps on a timeline."""

from __future__ import annotations

from urllib.parse import quote

from .conftest import PageWatch
from .shop import FAILED_CHECKOUT, SESSION, USER


def test_journey_shows_steps_think_time_failure_and_stop(ui: PageWatch) -> None:
    """A session's steps are in time order with think time, the failing step and the end."""
    ui.goto(f"/journey/{quote(SESSION)}")
    steps = ui.page.locator(".step")
    assert steps.count() == 3
    assert steps.nth(0).inner_text().count("GET /products") == 1
    assert "POST /checkout" in steps.nth(2).inner_text()
    assert steps.nth(2).get_attribute("data-trace-id") == FAILED_CHECKOUT
    assert "failed here" in steps.nth(2).inner_text()
    gaps = ui.page.locator(".gap")
    assert gaps.count() == 2
    assert "think time" in gaps.first.inner_text()
    assert "stopped here, right after step 3 failed" in ui.page.inner_text("#journey-stop")
    assert USER in ui.page.inner_text("#journey-summary")
    ui.page.wait_for_selector("body[data-ready-narrative=true]")
    story = ui.page.inner_text("#narrative")
    assert "Step 3 (POST /checkout) failed: the error started in payments · authorize card" in story
    assert "stopped right after step 3 failed" in story
    assert "error in payments" in steps.nth(2).inner_text()
    ui.screenshot("journey-narrative")


def test_journeys_list_filters_failed_and_orders(ui: PageWatch) -> None:
    """ "Failed only" and "slowest" go to the URL and narrow or reorder the list."""
    ui.goto("/journeys")
    everything = ui.page.locator("#journey-table tbody tr").count()
    ui.page.check("#j-failed")
    ui.page.select_option("#j-order", "slowest")
    ui.page.click("#journey-filters button[type=submit]")
    ui.page.wait_for_url("**/journeys?order=slowest&failed=1")
    ui.wait_ready()
    rows = ui.page.locator("#journey-table tbody tr")
    assert 0 < rows.count() < everything
    assert rows.count() == ui.page.locator("#journey-table tbody tr.has-error").count()
    ui.page.click(f"#journey-table a[href='/journey/{quote(SESSION)}']")
    ui.page.wait_for_url(f"**/journey/{quote(SESSION)}")
    assert ui.console_errors == []


def test_user_page_that_finds_nothing_explains_pseudonyms(ui: PageWatch) -> None:
    """/user/<raw id> with no match says ids are pseudonymised and names the server's key."""
    ui.goto("/user/nobody-at-all")
    message = ui.page.inner_text("#journey-error")
    assert "pseudonym" in message
    assert "built-in default key (fingerprint" in message


def test_session_prefix_opens_the_journey(ui: PageWatch) -> None:
    """The first characters of a session id open that session's journey page."""
    ui.goto(f"/journey/{quote(SESSION[:10])}")
    ui.page.wait_for_url(f"**/journey/{quote(SESSION)}")
    assert ui.page.locator(".step").count() == 3
