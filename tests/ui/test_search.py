"""The search page: filters live in the URL and change the results; sort, paging, opening."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .conftest import PageWatch
from .shop import FAILED_CHECKOUT, WIDE


def _query(ui: PageWatch) -> dict[str, list[str]]:
    return parse_qs(urlsplit(ui.page.url).query)


def test_filters_change_the_url_and_the_results(ui: PageWatch) -> None:
    """Choosing service and status puts them in the URL and lists only matching traces."""
    ui.goto("/")
    everything = ui.page.locator(".trace-item").count()
    ui.page.select_option("#f-service", "payments")
    ui.page.select_option("#f-status", "error")
    ui.page.click("button[type=submit]")
    ui.page.wait_for_url("**/?*status=error*")
    ui.wait_ready()
    assert _query(ui)["service"] == ["payments"]
    assert _query(ui)["status"] == ["error"]
    items = ui.page.locator(".trace-item")
    assert 0 < items.count() < everything
    assert items.count() == ui.page.locator(".trace-item.has-error").count()
    assert ui.page.locator(f".trace-item a[href='/trace/{FAILED_CHECKOUT}']").count() == 1
    # The URL alone reproduces the view: a fresh page on it shows the same filters.
    ui.goto(ui.page.url.removeprefix(ui.base_url))
    assert ui.page.input_value("#f-service") == "payments"
    assert ui.page.locator(".trace-item").count() == items.count()
    ui.page.go_back()
    ui.page.wait_for_url(ui.base_url + "/")
    assert ui.console_errors == []


def test_attribute_and_duration_filters_narrow_the_results(ui: PageWatch) -> None:
    """Attribute pairs become repeated attr= parameters and only matching traces are listed."""
    ui.goto("/")
    ui.page.fill("#f-attr", 'http.route=/checkout payment.outcome="declined by issuer"')
    ui.page.fill("#f-min", "100ms")
    ui.page.click("button[type=submit]")
    ui.page.wait_for_url("**min_duration=100ms*")
    ui.wait_ready()
    assert _query(ui)["attr"] == ["http.route=/checkout", "payment.outcome=declined by issuer"]
    assert (
        ui.page.input_value("#f-attr")
        == 'http.route=/checkout payment.outcome="declined by issuer"'
    )
    items = ui.page.locator(".trace-item")
    assert items.count() > 0
    assert items.count() == ui.page.locator(".trace-item.has-error").count()
    assert ui.page.locator(f".trace-item a[href='/trace/{FAILED_CHECKOUT}']").count() == 1
    assert ui.console_errors == []


def test_bad_filter_shows_the_api_message(ui: PageWatch) -> None:
    """A duration the API cannot read is reported next to the results, naming the parameter."""
    ui.goto("/?min_duration=fast")
    notice = ui.page.locator("#search-error")
    assert notice.is_visible()
    assert "min_duration" in notice.inner_text()


def test_order_and_paging_are_in_the_url(ui: PageWatch) -> None:
    """Ordering longest first puts the slowest trace on top; Next and Back move between pages."""
    ui.goto("/")
    ui.page.select_option("#sort", "slowest")
    ui.page.wait_for_url("**order=slowest*")
    ui.wait_ready()
    assert ui.page.locator(".trace-item a").first.get_attribute("href") == f"/trace/{WIDE}"
    ui.page.click("#pager a[rel=next]")
    ui.page.wait_for_url("**offset=20*")
    ui.wait_ready()
    assert "page 2" in ui.page.inner_text("#pager")
    assert ui.page.locator(".trace-item").count() == 20
    assert ui.page.locator(f".trace-item a[href='/trace/{WIDE}']").count() == 0
    ui.page.go_back()
    ui.page.wait_for_url("**order=slowest")
    ui.wait_ready()
    assert ui.page.locator(".trace-item a").first.get_attribute("href") == f"/trace/{WIDE}"
    assert ui.console_errors == []


def test_open_a_trace_from_the_results(ui: PageWatch) -> None:
    """Clicking a result opens its trace page with the waterfall."""
    ui.goto("/?status=error")
    ui.page.click(f".trace-item a[href='/trace/{FAILED_CHECKOUT}']")
    ui.page.wait_for_url(f"**/trace/{FAILED_CHECKOUT}")
    ui.wait_ready()
    assert ui.page.locator("#rows .row").count() == 7
    assert ui.console_errors == []


def test_go_to_trace_by_prefix_from_the_top_bar(ui: PageWatch) -> None:
    """The first 8 characters of a trace id in the top bar open that trace."""
    ui.goto("/journeys")
    ui.page.fill("#lookup-id", FAILED_CHECKOUT[:10])
    ui.page.press("#lookup-id", "Enter")
    ui.page.wait_for_url(f"**/trace/{FAILED_CHECKOUT}")
    ui.wait_ready()
    assert ui.console_errors == []


def test_go_to_trace_id_from_the_top_bar(ui: PageWatch) -> None:
    """Pasting a trace id (any case) in the top bar opens that trace."""
    ui.goto("/journeys")
    ui.page.fill("#lookup-id", FAILED_CHECKOUT.upper())
    ui.page.press("#lookup-id", "Enter")
    ui.page.wait_for_url(f"**/trace/{FAILED_CHECKOUT}")
