"""Span data is shown as text, never run; UI responses carry a strict CSP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final
from urllib.parse import quote

import httpx
import pytest

from threadline.server.ui.headers import CONTENT_SECURITY_POLICY

from .conftest import PageWatch, Server
from .shop import HOSTILE, HOSTILE_SESSION, IMG_PAYLOAD, SCRIPT_PAYLOAD

TEMPLATES: Final = Path(__file__).resolve().parents[2] / "src/threadline/server/ui/templates"


def _assert_inert(ui: PageWatch) -> None:
    assert ui.dialogs == []
    assert ui.page.locator("img").count() == 0
    # Only the page's own module script, none from the data.
    assert ui.page.locator("script:not([type=module])").count() == 0
    assert ui.page.locator("[onerror]").count() == 0


def test_hostile_trace_renders_inertly(ui: PageWatch) -> None:
    """Names, attribute keys and values holding markup are shown literally; nothing runs."""
    ui.goto(f"/trace/{HOSTILE}")
    text = ui.page.inner_text("main")
    assert SCRIPT_PAYLOAD in text
    assert IMG_PAYLOAD in text
    ui.page.locator("#rows .row").nth(0).click()
    ui.page.wait_for_selector("#detail:visible")
    detail = ui.page.inner_text("#detail")
    assert IMG_PAYLOAD in detail  # as attribute key, value and link ids
    assert SCRIPT_PAYLOAD in detail  # as status message and event name
    ui.page.locator("#rows .row").nth(1).click()
    assert SCRIPT_PAYLOAD in ui.page.inner_text("#detail")
    ui.page.fill("#find", "<script>")
    ui.page.wait_for_selector("#rows .row.match")
    ui.screenshot("hostile-trace")
    _assert_inert(ui)


@pytest.mark.parametrize(
    "path",
    [
        f"/journey/{quote(HOSTILE_SESSION, safe='')}",
        f"/user/{quote(SCRIPT_PAYLOAD, safe='')}",
        f"/service/{quote(SCRIPT_PAYLOAD, safe='')}",
        f"/?service={quote(SCRIPT_PAYLOAD, safe='')}",
        "/journeys",
    ],
)
def test_hostile_values_are_text_on_every_page(ui: PageWatch, path: str) -> None:
    """Pages listing the hostile trace, session, user or service show the payload as text."""
    ui.goto(path)
    text = ui.page.inner_text("main")
    assert SCRIPT_PAYLOAD in text or IMG_PAYLOAD in text, text
    _assert_inert(ui)


def test_hostile_session_and_service_are_shown_literally(ui: PageWatch) -> None:
    """A session id and a service name that look like markup appear as typed."""
    ui.goto(f"/journey/{quote(HOSTILE_SESSION, safe='')}")
    assert HOSTILE_SESSION in ui.page.inner_text("h1")
    assert SCRIPT_PAYLOAD in ui.page.inner_text("#journey-summary")
    ui.goto(f"/service/{quote(SCRIPT_PAYLOAD, safe='')}")
    assert SCRIPT_PAYLOAD in ui.page.inner_text("h1")
    assert SCRIPT_PAYLOAD in ui.page.title()
    _assert_inert(ui)


def _static_paths() -> set[str]:
    found: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        found.update(re.findall(r'"(/static/[^"]+)"', template.read_text(encoding="utf-8")))
    return found


def test_pages_and_files_carry_a_strict_content_security_policy(server: Server) -> None:
    """Every UI response forbids inline and foreign scripts, and every file it loads exists."""
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    paths = [
        "/",
        f"/trace/{HOSTILE}",
        "/journeys",
        "/journey/x",
        "/map",
        "/service/web",
        "/compare",
    ]
    with httpx.Client(base_url=server.base_url) as client:
        for path in paths + sorted(_static_paths()):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
        script = client.get("/static/trace.js")
        assert script.headers["content-type"].startswith("text/javascript")
        again = client.get("/static/trace.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304


def test_static_route_serves_only_the_shipped_files(server: Server) -> None:
    """Unknown names and attempts to leave the static folder get 404."""
    with httpx.Client(base_url=server.base_url) as client:
        for path in ["/static/nothing.js", "/static/..%2Fpages.py", "/static/%2e%2e/routes.py"]:
            assert client.get(path).status_code == 404, path


def test_page_shells_escape_ids_from_the_url(server: Server) -> None:
    """An id in the URL is written into the page as text, never as markup."""
    with httpx.Client(base_url=server.base_url) as client:
        html = client.get(f"/journey/{quote(HOSTILE_SESSION, safe='')}").text
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
