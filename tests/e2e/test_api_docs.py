"""`/api/docs` works with no network but the server's own: everything it loads ships inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from support.missing import require_executable, require_module
from support.processes import threadline_serve

pytestmark = pytest.mark.e2e

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
WAIT_MS: Final = 15_000


def test_api_docs_list_the_operations_with_every_other_host_blocked(tmp_path: Path) -> None:
    """A browser allowed to reach 127.0.0.1 only sees every endpoint listed, under the UI's CSP."""
    require_executable(str(CHROMIUM))
    sync_api = require_module("playwright.sync_api")
    blocked: list[str] = []
    loaded: list[str] = []
    problems: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith("data:"):
            loaded.append(url)
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    with threadline_serve(tmp_path) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            response = page.goto(f"{server.url}/api/docs")
            assert response is not None
            assert response.status == 200
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_selector(".opblock-summary-path", timeout=WAIT_MS)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert "/api/traces/{trace_id}" in paths
    assert "/v1/traces" in paths
    assert "/healthz" in paths
    assert any(url.endswith("/static/swagger-ui-bundle.js") for url in loaded)
    assert blocked == []
    assert problems == []
