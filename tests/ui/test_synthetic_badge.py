"""Synthetic journeys in the UI: listed with a "synthetic" badge in the search results,
on the trace page and on the journey page, and filtered by the search's synthetic field.

The server holds one session with a user's checkout and a probe's checkout (its spans
marked ``journey.synthetic=true``), so every page shows both side by side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind

from .conftest import WAIT_MS, PageWatch

SESSION: Final = "s-probe-and-user"
REAL: Final = "a1" * 16
PROBE: Final = "b2" * 16
MS: Final = 1_000_000


def checkout(trace_id: str, start_ns: int, *, synthetic: bool) -> list[Any]:
    marked = {"journey.synthetic": "true"} if synthetic else {}
    return [
        span_record(trace_id, "c1", None, "shop", "POST /checkout", start_ns,
                    start_ns + 80 * MS, session_id=SESSION, attributes=marked),
        span_record(trace_id, "c2", "c1", "shop", "POST /charge", start_ns + MS,
                    start_ns + 40 * MS, kind=SpanKind.CLIENT, session_id=SESSION,
                    attributes=marked),
        span_record(trace_id, "c3", "c2", "payments", "charge", start_ns + 2 * MS,
                    start_ns + 39 * MS, kind=SpanKind.SERVER, session_id=SESSION,
                    attributes=marked),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    now = time.time_ns() - 60_000 * MS
    with live_server(Path(tmp_path_factory.mktemp("synthetic")) / "spans.duckdb") as live:
        spans = checkout(REAL, now, synthetic=False) + checkout(
            PROBE, now + 500 * MS, synthetic=True
        )
        live.store.write(SpanBatch.from_records(spans)).result()
        yield live.url


@pytest.fixture
def page(desktop_context: Any, base_url: str) -> Iterator[PageWatch]:
    tab = desktop_context.new_page()
    tab.set_default_timeout(WAIT_MS)
    watch = PageWatch(tab, base_url)
    tab.on("console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: watch.console_errors.append(f"page error: {e}"))
    try:
        yield watch
    finally:
        tab.close()


def _row(page: PageWatch, trace_id: str) -> Any:
    return page.page.locator(f".trace-item:has(a[href='/trace/{trace_id}'])")


def test_search_results_badge_the_probe_and_the_filter_narrows(page: PageWatch) -> None:
    """Both checkouts are listed, only the probe's with the badge; "only them" lists the
    probe alone, "exclude them" the user's alone, and the choice lives in the URL."""
    page.goto("/")
    assert _row(page, PROBE).locator(".badge.synthetic").inner_text() == "synthetic"
    assert _row(page, REAL).count() == 1
    assert _row(page, REAL).locator(".badge.synthetic").count() == 0
    page.page.select_option("#f-synthetic", "only")
    page.page.click("button[type=submit]")
    page.page.wait_for_url("**synthetic=only*")
    page.wait_ready()
    assert page.page.locator(".trace-item").count() == 1
    assert _row(page, PROBE).count() == 1
    page.goto("/?synthetic=exclude")
    assert page.page.input_value("#f-synthetic") == "exclude"
    assert page.page.locator(".trace-item").count() == 1
    assert _row(page, REAL).count() == 1
    page.screenshot("search-synthetic")
    assert page.console_errors == []


def test_trace_page_badges_a_synthetic_trace_only(page: PageWatch) -> None:
    page.goto(f"/trace/{PROBE}")
    assert page.page.locator("#trace-summary .badge.synthetic").inner_text() == "synthetic"
    page.screenshot("trace-synthetic")
    page.goto(f"/trace/{REAL}")
    assert page.page.locator("#trace-summary .badge.synthetic").count() == 0
    assert page.console_errors == []


def test_journey_page_badges_the_probe_step_and_the_journey(page: PageWatch) -> None:
    """The session's two steps: the probe's carries the badge, the user's does not; the
    journey's summary says it holds synthetic traffic."""
    page.goto(f"/journey/{SESSION}")
    probe_step = page.page.locator(f"li.step[data-trace-id='{PROBE}']")
    real_step = page.page.locator(f"li.step[data-trace-id='{REAL}']")
    assert probe_step.locator(".badge.synthetic").inner_text() == "synthetic"
    assert real_step.locator(".badge.synthetic").count() == 0
    assert page.page.locator(".badge.synthetic").count() == 2
    page.screenshot("journey-synthetic")
    assert page.console_errors == []
