"""In the browser, a viewer token sees sensitive fields masked; an admin sees them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

import pytest

from support.live_server import LiveServer, live_server
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord

from .conftest import DESKTOP, WAIT_MS

VIEWER_TOKEN: Final = "viewer-token-0123456789abcdef0123"
ADMIN_TOKEN: Final = "admin-token-0123456789abcdef01234"
SECRET_USER: Final = "u_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TRACE_ID: Final = "5e" * 16


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with viewer and admin tokens, holding one trace of a known user."""
    now = time.time_ns()
    span = SpanRecord(
        trace_id=TRACE_ID,
        span_id="1a" * 8,
        parent_span_id=None,
        service_name="web",
        name="POST /checkout",
        kind=SpanKind.SERVER,
        start_ns=now - 50_000_000,
        end_ns=now,
        session_id="s-masking",
        user_id=SECRET_USER,
        attributes={"user.id": SECRET_USER, "session.id": "s-masking", "http.route": "/checkout"},
    )
    db = tmp_path_factory.mktemp("masking") / "spans.duckdb"
    with live_server(db, tokens=f"viewer:{VIEWER_TOKEN},admin:{ADMIN_TOKEN}") as live:
        live.store.write(SpanBatch.from_records([span])).result()
        yield live


def _trace_page_text(browser: Any, server: LiveServer, token: str) -> str:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/trace/{TRACE_ID}")
        # Not logged in: the UI sends the browser to the login form first.
        page.wait_for_selector("input[name=token]")
        page.fill("input[name=token]", token)
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-ready=true]")
        page.locator("#rows .row", has_text="POST /checkout").click()
        detail = page.locator("#detail")
        detail.wait_for(state="visible")
        return str(detail.inner_text())
    finally:
        context.close()


def test_viewer_sees_the_user_id_masked_in_the_trace_page(
    browser: Any, guarded: LiveServer
) -> None:
    """A viewer's trace page shows [masked] where the user id is, never the id itself."""
    text = _trace_page_text(browser, guarded, VIEWER_TOKEN)
    assert "POST /checkout" in text
    assert SECRET_USER not in text
    assert "[masked]" in text


def test_admin_sees_the_user_id_in_the_trace_page(browser: Any, guarded: LiveServer) -> None:
    """An admin's trace page shows the user id as stored."""
    assert SECRET_USER in _trace_page_text(browser, guarded, ADMIN_TOKEN)
