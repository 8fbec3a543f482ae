"""Log lines on the trace page in Chromium: a marker on each span that logged, the span's
lines in its detail panel, and the Logs tab with every line of the trace as text; the
error origin of a span without an exception event is its ERROR line; the search form's
"Logged text" field finds the trace by a line's text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord
from threadline.server.model import StatusCode

from .conftest import PageWatch, _watched_page

MS: Final = 1_000_000
TRACE: Final = "5e" * 16
ROOT: Final = "0000000000000a01"
CHARGE: Final = "0000000000000a02"
SESSION: Final = "s-logs-journey"
QUIET: Final = "6f" * 16


def line(span_id: str, service: str, at_ms: int, body: str, severity: int, start: int) -> LogRecord:
    return LogRecord(
        time_ns=start + at_ms * MS, observed_ns=start + at_ms * MS,
        trace_id=TRACE if span_id else None, span_id=span_id or None, service_name=service,
        severity_number=severity, severity_text="ERROR" if severity >= 17 else "WARNING",
        body=body, session_id=SESSION,
    )  # fmt: skip


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two services, each logging a WARNING+ line inside its own span of one request."""
    start = time.time_ns() - 60_000 * MS
    charge_at = start + 20 * MS
    spans = [
        span_record(
            TRACE,
            ROOT,
            None,
            "checkout",
            "POST /checkout",
            start,
            start + 200 * MS,
            session_id=SESSION,
        ),
        span_record(
            TRACE,
            CHARGE,
            ROOT,
            "payments",
            "charge card",
            charge_at,
            charge_at + 130 * MS,
            session_id=SESSION,
            # Failed without an exception event: its ERROR line says why.
            status=StatusCode.ERROR,
            status_message="HTTP 500",
        ),
        span_record(QUIET, ROOT, None, "checkout", "POST /checkout", start, start + 50 * MS),
    ]
    lines = [
        line(ROOT, "checkout", 10, "stock is low for sku-7", 13, start),
        line(CHARGE, "payments", 90, "card declined <b>51</b>", 17, start),
        line("", "web", -5, "cart opened before checkout", 13, start),
    ]
    with live_server(tmp_path_factory.mktemp("ui-logs") / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        live.store.write_logs(LogBatch.from_records(lines)).result(timeout=30)
        yield live.url


@pytest.fixture
def page(desktop_context: Any, base_url: str) -> Iterator[PageWatch]:
    with _watched_page(desktop_context, base_url) as watch:
        yield watch


def test_each_spans_lines_are_under_the_right_span(page: PageWatch) -> None:
    """Both spans carry a log marker; each detail panel shows that span's line only."""
    page.goto(f"/trace/{TRACE}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    charge = page.page.locator("#rows .row", has_text="charge card")
    root = page.page.locator("#rows .row", has_text="POST /checkout")
    assert "1 log line" in charge.inner_text()
    assert "1 log line" in root.inner_text()
    # A tick on each bar, inside it, at the line's time, colored by its level.
    for row, level, text in ((charge, "error", "card declined <b>51</b>"), (root, "warn", "stock")):
        tick = row.locator(".cell-bar .log-tick")
        assert tick.count() == 1
        assert level in (tick.get_attribute("class") or "")
        assert text in (tick.get_attribute("title") or "")
        bar, mark = row.locator(".cell-bar .bar").bounding_box(), tick.bounding_box()
        assert bar["x"] <= mark["x"] + mark["width"] / 2 <= bar["x"] + bar["width"]
    charge.click()
    detail = page.page.locator("#detail")
    detail.wait_for(state="visible")
    assert "card declined <b>51</b>" in detail.inner_text()  # markup shown as text
    assert "stock is low" not in detail.inner_text()
    assert detail.locator(".log-body b").count() == 0  # never parsed as HTML
    root.click()
    page.page.wait_for_function(
        "document.querySelector('#detail').innerText.includes('stock is low')"
    )
    assert "card declined" not in page.page.inner_text("#detail")
    assert page.console_errors == []


def test_the_error_origin_is_the_line_the_failed_span_logged(page: PageWatch) -> None:
    """The note and the span's detail give the ERROR line, as text, not "HTTP 500"."""
    page.goto(f"/trace/{TRACE}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    notes = page.page.locator("#trace-notes")
    assert "Error started in payments · charge card" in notes.inner_text()
    assert "logged “card declined <b>51</b>”" in notes.inner_text()
    assert "HTTP 500" not in notes.inner_text()
    assert notes.locator("b").count() == 0
    page.page.locator("#rows .row", has_text="charge card").click()
    page.page.wait_for_function(
        "document.querySelector('#detail').innerText.includes('the error started here')"
    )
    assert "the error started here: logged “card declined <b>51</b>”" in page.page.inner_text(
        "#detail"
    )
    assert page.console_errors == []


def test_the_logs_tab_lists_the_whole_trace_in_order(page: PageWatch) -> None:
    """The Logs section holds both services' lines, oldest first."""
    page.goto(f"/trace/{TRACE}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    tab = page.page.locator("#trace-logs")
    assert tab.is_visible()
    bodies = tab.locator(".log-body").all_inner_texts()
    assert bodies == ["stock is low for sku-7", "card declined <b>51</b>"]
    assert "Logs (2 lines)" in tab.inner_text()
    page.screenshot("trace-logs")
    assert page.console_errors == []


def test_the_journey_page_interleaves_lines_with_steps(page: PageWatch) -> None:
    """A line logged before the step comes before it; the step's lines follow it, in order."""
    page.goto(f"/journey/{SESSION}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    items = page.page.locator("#steps > li")
    kinds = [
        "log" if "log-step" in (items.nth(k).get_attribute("class") or "") else "other"
        for k in range(items.count())
    ]
    texts = items.all_inner_texts()
    assert kinds == ["log", "other", "log", "log", "other"]
    assert "cart opened before checkout" in texts[0]
    assert "stock is low" in texts[2]
    assert "card declined <b>51</b>" in texts[3]
    assert page.console_errors == []


def test_the_search_form_finds_the_trace_by_a_logged_text(page: PageWatch) -> None:
    """The "Logged text" field becomes log_text= and lists only the trace that logged it;
    markup typed into it is matched as text."""
    page.goto("/")
    assert page.page.locator(".trace-item").count() == 2
    page.page.fill("#f-log", "DECLINED <b>51")
    page.page.click("button[type=submit]")
    page.page.wait_for_url("**/?*log_text=*")
    page.wait_ready()
    items = page.page.locator(".trace-item")
    assert items.count() == 1
    assert page.page.locator(f".trace-item a[href='/trace/{TRACE}']").count() == 1
    assert page.page.input_value("#f-log") == "DECLINED <b>51"
    assert page.console_errors == []
