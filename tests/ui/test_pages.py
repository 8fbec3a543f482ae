"""Every UI page loads in a real browser without errors, at desktop and phone width."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

import pytest

from .conftest import PageWatch
from .shop import FAILED_CHECKOUT, SESSION, USER, WIDE

PAGES: Final = {
    "search": "/",
    "trace": f"/trace/{FAILED_CHECKOUT}",
    "trace-wide": f"/trace/{WIDE}",
    "journeys": "/journeys",
    "journey": f"/journey/{quote(SESSION)}",
    "user": f"/user/{quote(USER)}",
    "map": "/map",
    "service": "/service/payments",
    "compare": f"/compare?a={FAILED_CHECKOUT}&b={WIDE}",
    "slos": "/slos",
    "alerts": "/alerts",
    "drills": "/drills",
}
LATER: Final = {"trace": "critical", "trace-wide": "critical", "journey": "narrative"}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_without_console_errors(ui: PageWatch, name: str) -> None:
    """Each page draws its data with no script error, failed request or console error."""
    response = ui.goto(PAGES[name])
    assert response.status == 200
    # Analyses drawn after the main data (critical path, narrative) must arrive too.
    if name in LATER:
        ui.page.wait_for_selector(f"body[data-ready-{LATER[name]}=true]")
    ui.screenshot(name)
    assert ui.console_errors == []
    assert ui.page.locator(".notice.error:visible").count() == 0


@pytest.mark.parametrize(
    "name", ["search", "trace", "journeys", "journey", "map", "service", "compare"]
)
def test_phone_width_has_no_horizontal_overflow(phone: PageWatch, name: str) -> None:
    """On a 390 px phone screen the page fits its width: nothing scrolls sideways."""
    phone.goto(PAGES[name])
    phone.screenshot(f"phone-{name}")
    overflow = phone.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert phone.console_errors == []
