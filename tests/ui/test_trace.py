"""The trace page: waterfall, collapsible tree, span details, keyboard, large traces."""

from __future__ import annotations

from urllib.parse import quote

from .conftest import PageWatch
from .shop import FAILED_CHECKOUT, SESSION, SKEWED, WIDE, WIDE_SPANS


def _open(ui: PageWatch, trace_id: str) -> None:
    ui.goto(f"/trace/{trace_id}")


def test_selecting_a_span_shows_its_details(ui: PageWatch) -> None:
    """Clicking a span opens its attributes, events and resource; the URL names the span."""
    _open(ui, FAILED_CHECKOUT)
    row = ui.page.locator("#rows .row", has_text="authorize card")
    assert "error origin" in row.inner_text()
    row.click()
    detail = ui.page.locator("#detail")
    detail.wait_for(state="visible")
    text = detail.inner_text()
    assert "payment.provider" in text
    assert "acme-pay" in text
    assert "card declined: insufficient funds" in text
    assert "CardDeclined" in text  # the exception event's stack trace
    assert "payments-7d9f8-x2k4q" in text  # resource: host.name
    assert "span=" in ui.page.url
    ui.screenshot("trace-detail")
    # The URL with the span reopens the same selection.
    ui.goto(ui.page.url.removeprefix(ui.base_url))
    assert ui.page.locator("#detail").is_visible()
    assert "acme-pay" in ui.page.inner_text("#detail")
    assert ui.console_errors == []


def test_collapse_and_expand_a_subtree(ui: PageWatch) -> None:
    """A node's toggle hides and shows its subtree."""
    _open(ui, FAILED_CHECKOUT)
    rows = ui.page.locator("#rows .row")
    assert rows.count() == 7
    orders = ui.page.locator("#rows .row", has_text="POST orders")
    orders.locator("button.toggle").click()
    assert rows.count() == 2
    assert (
        ui.page.locator("#rows .row", has_text="POST orders").get_attribute("aria-expanded")
        == "false"
    )
    ui.page.locator("#rows .row", has_text="POST orders").locator("button.toggle").click()
    assert rows.count() == 7
    ui.page.click("#collapse-all")
    assert rows.count() == 2
    ui.page.click("#expand-all")
    assert rows.count() == 7


def test_keyboard_moves_and_toggles_tree_nodes(ui: PageWatch) -> None:
    """Tab reaches the span tree; arrows move the selection; Enter and Space toggle a node."""
    _open(ui, FAILED_CHECKOUT)
    ui.page.focus("#find")
    ui.page.keyboard.press("Tab")
    assert ui.page.evaluate("document.activeElement.id") == "rows"
    ui.page.keyboard.press("ArrowDown")  # selects the root
    ui.page.keyboard.press("ArrowDown")  # its child, "POST orders"
    selected = ui.page.locator("#rows .row.selected")
    assert "POST orders" in selected.inner_text()
    ui.page.keyboard.press("Enter")
    assert ui.page.locator("#rows .row").count() == 2
    assert ui.page.locator("#rows .row.selected").get_attribute("aria-expanded") == "false"
    ui.page.keyboard.press("Space")
    assert ui.page.locator("#rows .row").count() == 7
    ui.page.keyboard.press("ArrowLeft")  # collapses the open node
    assert ui.page.locator("#rows .row").count() == 2
    ui.page.keyboard.press("ArrowRight")
    assert ui.page.locator("#rows .row").count() == 7
    assert ui.page.evaluate("document.activeElement.id") == "rows"


def test_large_trace_renders_only_the_rows_in_view(ui: PageWatch) -> None:
    """A trace of thousands of spans keeps a light DOM and still reaches its last span."""
    _open(ui, WIDE)
    assert f"{WIDE_SPANS:,} spans" in ui.page.inner_text("#trace-summary")
    rendered = ui.page.locator("#rows .row").count()
    assert 0 < rendered < 150
    ui.page.eval_on_selector("#rows", "box => { box.scrollTop = box.scrollHeight; }")
    ui.page.wait_for_selector("#rows .row:has-text('audit')")
    assert ui.page.locator("#rows .row").count() < 150
    ui.page.focus("#rows")
    ui.page.keyboard.press("Home")
    ui.page.wait_for_selector("#rows .row.selected:has-text('nightly reconcile')")


def test_find_highlights_and_jumps_to_matches(ui: PageWatch) -> None:
    """Typing in Find marks matching spans; Enter selects the next one."""
    _open(ui, FAILED_CHECKOUT)
    ui.page.fill("#find", "/charge")  # the client span's url.full and the server span's name
    ui.page.wait_for_selector("#rows .row.match")
    assert ui.page.locator("#rows .row.match").count() == 2
    ui.page.press("#find", "Enter")
    assert "POST payments" in ui.page.inner_text("#rows .row.selected")
    ui.page.press("#find", "Enter")
    assert "POST /charge" in ui.page.inner_text("#rows .row.selected")
    assert "2 of 2" in ui.page.inner_text("#find-count")


def test_follow_a_trace_to_its_journey_and_back(ui: PageWatch) -> None:
    """The journey link leads to the session's steps; a step leads back to its trace."""
    _open(ui, FAILED_CHECKOUT)
    ui.page.click("#journey-link")
    ui.page.wait_for_url(f"**/journey/{quote(SESSION)}")
    ui.wait_ready()
    step = ui.page.locator(f".step[data-trace-id='{FAILED_CHECKOUT}'] a")
    assert "failed here" in step.inner_text()
    step.click()
    ui.page.wait_for_url(f"**/trace/{FAILED_CHECKOUT}")
    ui.wait_ready()
    assert ui.console_errors == []


def test_unknown_trace_says_so(ui: PageWatch) -> None:
    """A trace that is not stored gets a plain message, not an empty page."""
    _open(ui, "0" * 31 + "1")
    assert "No trace" in ui.page.inner_text("#trace-error")


def test_malformed_trace_id_is_refused(ui: PageWatch) -> None:
    """A trace URL whose id is not 32 hex characters answers 400 with the reason."""
    response = ui.goto("/trace/not-a-trace", ready=False)
    assert response.status == 400
    assert "32 hexadecimal" in ui.page.inner_text("main")


def test_error_origin_is_named(ui: PageWatch) -> None:
    """A failed trace says which span its error started in, and that span is marked."""
    _open(ui, FAILED_CHECKOUT)
    notes = ui.page.inner_text("#trace-notes")
    assert "Error started in payments · authorize card" in notes
    assert "CardDeclined" in notes
    ui.page.click("#trace-notes button.link")
    assert "authorize card" in ui.page.inner_text("#rows .row.selected")
    assert "the error started here" in ui.page.inner_text("#detail")


def test_critical_path_is_marked(ui: PageWatch) -> None:
    """The spans that set the trace's latency are marked, with each service's share."""
    _open(ui, SKEWED)
    ui.page.wait_for_selector("body[data-ready-critical=true]")
    assert ui.page.locator("#rows .row.critical").count() >= 5
    assert ui.page.locator("#rows .crit").count() > 0
    shares = ui.page.inner_text("#critical-path")
    assert "payments" in shares
    assert "queue orders.placed" in shares  # the message hop's wait is on the path
    ui.screenshot("trace-critical-path")
    ui.page.uncheck("#show-critical")
    assert not ui.page.locator("#rows .crit").first.is_visible()
    assert ui.console_errors == []


def test_clock_skew_adjustment_is_shown(ui: PageWatch) -> None:
    """Spans moved to correct a host's clock say so, by how much and why."""
    _open(ui, SKEWED)
    assert "Clock skew corrected" in ui.page.inner_text("#trace-notes")
    charge = ui.page.locator("#rows .row", has_text="POST /charge")
    assert "clock adjusted" in charge.inner_text()
    charge.click()
    assert "times shifted by +80 ms" in ui.page.inner_text("#detail")


def test_compare_with_another_trace(ui: PageWatch) -> None:
    """The compare box opens both traces side by side, operation by operation."""
    _open(ui, FAILED_CHECKOUT)
    ui.page.fill("#compare-with", SKEWED)
    ui.page.press("#compare-with", "Enter")
    ui.page.wait_for_url(f"**/compare?a={FAILED_CHECKOUT}&b={SKEWED}")
    ui.wait_ready()
    table = ui.page.inner_text("#compare-table")
    assert "authorize card" in table
    assert "Only in B" in ui.page.inner_text("#compare")  # the order hand-off never happened in A
    ui.screenshot("compare")
    assert ui.console_errors == []
