"""The service map and the service page: from a box on the map to a service's numbers."""

from __future__ import annotations

from .conftest import PageWatch
from .shop import FAILED_CHECKOUT


def test_click_a_service_on_the_map_opens_its_page(ui: PageWatch) -> None:
    """The map draws every service and its calls; clicking a box opens that service."""
    ui.goto("/map")
    nodes = ui.page.locator("#map a.node")
    assert nodes.count() == 7
    assert ui.page.locator("#map .edge").count() == 6
    # Calls that fail are drawn in red, with their rate, error rate and p99.
    failing = ui.page.locator("#map .edge.error text")
    assert failing.count() == 2
    assert "err" in failing.first.text_content()
    assert "p99" in failing.first.text_content()
    ui.page.click("#map a.node[data-service=payments]")
    ui.page.wait_for_url("**/service/payments")
    ui.wait_ready()
    assert "payments" in ui.page.inner_text("h1")
    assert ui.console_errors == []


def test_map_nodes_open_with_the_keyboard(ui: PageWatch) -> None:
    """A service box can be focused and opened with Enter."""
    ui.goto("/map")
    ui.page.focus("#map a.node[data-service=catalog]")
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_url("**/service/catalog")


def test_service_page_shows_rate_errors_latency_and_why_slow(ui: PageWatch) -> None:
    """A service shows its RED charts, its operations, and what its slow requests have in common."""
    ui.goto("/service/web")
    assert ui.page.locator("#charts figure").count() == 3
    assert ui.page.locator("#charts figure rect.bar").count() > 0
    assert ui.page.locator("#charts figure path.series").count() == 3
    operations = ui.page.inner_text("#ops-table")
    assert "GET /products/{id}" in operations
    assert "POST /checkout" in operations
    why = ui.page.inner_text("#why-slow")
    assert "legacy-warehouse" in why  # the slow dependency is where the extra time goes
    assert "warehouse.region=eu-west" in why
    # The planted cause heads the values, and identifiers (ports, ids) are not among them.
    causes = ui.page.locator("#why-slow .attribute-causes li.cause")
    assert causes.count() > 0
    assert "warehouse.region=eu-west" in causes.first.inner_text()
    for noise in ("net.peer.port=", "product.id=", "http.url="):
        assert noise not in why
    assert ui.page.locator("#slow-traces .trace-item").count() > 0
    ui.screenshot("service-web")
    assert ui.console_errors == []


def test_service_page_shows_error_hotspots_and_failed_traces(ui: PageWatch) -> None:
    """A failing service shows where its failures start and lists its failed traces."""
    ui.goto("/service/payments")
    assert "authorize card" in ui.page.inner_text("#hotspots")
    failed = ui.page.locator(f"#failed-traces a[href='/trace/{FAILED_CHECKOUT}']")
    assert failed.count() == 1
    ui.page.select_option("#window", "6h")
    ui.page.wait_for_url("**/service/payments?window=6h")
    ui.wait_ready()
    assert ui.page.locator("#charts figure").count() == 3


def test_unknown_service_says_so(ui: PageWatch) -> None:
    """A service that never sent spans gets the API's message instead of empty charts."""
    ui.goto("/service/no-such-service")
    assert "no-such-service" in ui.page.inner_text("#service-error")
