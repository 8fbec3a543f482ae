"""Fixtures for the UI tests: a real server over the shop's spans, and one headless browser.

The server is uvicorn running ``create_app`` over a DuckDB file in a temporary
directory, on a free loopback port. The browser is the system's Chromium driven by
Playwright; it is never downloaded. Screenshots go to ``artifacts/ui/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.live_server import live_server
from support.missing import require_executable, require_module
from threadline.server.batch import SpanBatch

from .shop import Shop

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
# Pages draw in well under a second; a wait this long means something is broken.
WAIT_MS: Final = 5000
DESKTOP: Final = {"width": 1280, "height": 860}
PHONE: Final = {"width": 390, "height": 844}


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Threadline server holding the shop's spans (see ``shop.py``).

    The traces go in one write and are folded before the first page opens: a commit
    per trace cost the first test of each worker tens of seconds on a slow machine,
    and the pages read the same rows either way."""
    with live_server(tmp_path_factory.mktemp("ui") / "spans.duckdb") as live:
        spans = [span for trace in Shop(time.time_ns()).traces() for span in trace]
        live.store.write(SpanBatch.from_records(spans)).result()
        live.store.compact_rollups()
        yield Server(live.url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (starting one costs about a second).

    Not one per run: Playwright's sync API holds an event loop on the thread while it
    is open, so a later module of the same worker process could neither start its own
    Playwright (the end-to-end tests do) nor call ``asyncio.run``."""
    require_executable(str(CHROMIUM))  # Debian's chromium; never a downloaded browser
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageWatch:
    """A page plus everything that went wrong on it: console errors, page errors, dialogs."""

    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def goto(self, path: str, *, ready: bool = True) -> Any:
        """Open ``path``; with ``ready``, wait until its script has drawn the data."""
        response = self.page.goto(self.base_url + path)
        if ready:
            self.wait_ready()
        return response

    def wait_ready(self) -> None:
        """Wait until the page's script has drawn its data (or its error)."""
        self.page.wait_for_selector("body[data-ready=true]")

    def screenshot(self, name: str, *, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


@contextmanager
def _watched_page(context: Any, base_url: str) -> Iterator[PageWatch]:
    """A new page in ``context`` that records what goes wrong on it; closed on exit."""
    page = context.new_page()
    try:
        page.set_default_timeout(WAIT_MS)
        watch = PageWatch(page, base_url)
        page.on(
            "console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: watch.console_errors.append(f"page error: {e}"))

        def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        yield watch
    finally:
        page.close()


@pytest.fixture(scope="module")
def desktop_context(browser: Any) -> Iterator[Any]:
    """A 1280 px browser context shared by the tests (the UI keeps no client state)."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def phone_context(browser: Any) -> Iterator[Any]:
    """A phone-width (390 px, touch) browser context shared by the tests."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def ui(desktop_context: Any, server: Server) -> Iterator[PageWatch]:
    """A fresh desktop-sized page (1280 px) on the test server."""
    with _watched_page(desktop_context, server.base_url) as watch:
        yield watch


@pytest.fixture
def phone(phone_context: Any, server: Server) -> Iterator[PageWatch]:
    """A fresh phone-width page on the test server."""
    with _watched_page(phone_context, server.base_url) as watch:
        yield watch
