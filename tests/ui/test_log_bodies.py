"""Hostile and odd log bodies, sent through ``POST /v1/logs`` and shown in Chromium:
markup in strings, maps, arrays and bytes is shown as text and never runs; a huge body
is shown cut; a record with an invalid trace id is kept, without a link to a trace."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.ingest.limits import IngestLimits

from .conftest import PageWatch, _watched_page

MS: Final = 1_000_000
TRACE: Final = "4c" * 16
SPAN: Final = "0000000000000c01"
SESSION: Final = "s-hostile-bodies"
HUGE: Final = 100_000
CUT: Final = IngestLimits().max_attribute_value_length
SCRIPT: Final = "<script>window.__pwned = 1</script>"
IMG: Final = '<img src=x onerror="window.__pwned = 2">'


def otlp_record(at_ns: int, body: dict[str, Any], trace_id: str = TRACE) -> dict[str, Any]:
    return {
        "timeUnixNano": str(at_ns), "severityNumber": 13, "severityText": "WARN",
        "traceId": trace_id, "spanId": SPAN, "body": body,
        "attributes": [{"key": "session.id", "value": {"stringValue": SESSION}}],
    }  # fmt: skip


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    start = time.time_ns() - 60_000 * MS
    at = [start + (n + 1) * 10 * MS for n in range(6)]
    bodies = [
        {"stringValue": SCRIPT},
        {"kvlistValue": {"values": [
            {"key": "html", "value": {"stringValue": IMG}},
            {"key": "nested", "value": {"kvlistValue": {"values": [
                {"key": "codes", "value": {"arrayValue": {"values": [
                    {"intValue": "51"}, {"stringValue": "<b>x</b>"}]}}}]}}},
        ]}},
        {"arrayValue": {"values": [{"stringValue": SCRIPT}, {"intValue": "7"}]}},
        {"bytesValue": base64.b64encode(b"<script>").decode()},
        {"stringValue": "y" * HUGE},
    ]  # fmt: skip
    records = [otlp_record(t, body) for t, body in zip(at, bodies, strict=False)]
    # An invalid trace id (not hex): kept, unlinked, on the journey page only.
    records.append(otlp_record(at[5], {"stringValue": "bad id line"}, trace_id="not-a-trace"))
    request = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"logRecords": records}],
    }]}  # fmt: skip
    with live_server(tmp_path_factory.mktemp("ui-log-bodies") / "spans.duckdb") as live:
        span = span_record(
            TRACE, SPAN, None, "web", "GET /page", start, start + 100 * MS, session_id=SESSION
        )
        live.store.write(SpanBatch.from_records([span])).result(timeout=30)
        answer = httpx.post(
            live.logs_url,
            content=json.dumps(request),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        yield live.url


@pytest.fixture
def page(desktop_context: Any, base_url: str) -> Iterator[PageWatch]:
    with _watched_page(desktop_context, base_url) as watch:
        yield watch


def assert_nothing_ran(page: PageWatch, container: str) -> None:
    assert page.page.evaluate("window.__pwned") is None
    assert page.page.locator(f"{container} script, {container} img, {container} b").count() == 0
    assert page.dialogs == []
    assert page.console_errors == []


def test_every_body_is_shown_as_text_on_the_trace_page(page: PageWatch) -> None:
    """The Logs tab shows markup as typed, maps and arrays as JSON, bytes as base64, and
    the huge body cut to the limit."""
    page.goto(f"/trace/{TRACE}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    shown = page.page.locator("#trace-logs .log-body").all_inner_texts()
    assert shown[0] == SCRIPT
    assert json.loads(shown[1]) == {"html": IMG, "nested": {"codes": [51, "<b>x</b>"]}}
    assert json.loads(shown[2]) == [SCRIPT, 7]
    assert shown[3] == base64.b64encode(b"<script>").decode()
    assert shown[4] == "y" * CUT
    cut = page.page.locator("#trace-logs .log-line").nth(4).locator(".log-cut")
    assert cut.inner_text() == f"(cut at {CUT} characters)"
    assert page.page.locator("#trace-logs .log-cut").count() == 1
    assert len(shown) == 5  # the bad-id line is not this trace's
    assert_nothing_ran(page, "#trace-logs")


def test_the_line_with_a_bad_trace_id_is_on_the_journey_without_a_link(page: PageWatch) -> None:
    """The journey lists all six lines; the unlinked one has no trace link."""
    page.goto(f"/journey/{SESSION}")
    page.page.wait_for_selector("body[data-ready-logs=true]")
    lines = page.page.locator("#steps > li.log-step")
    assert lines.count() == 6
    unlinked = lines.filter(has_text="bad id line")
    assert unlinked.count() == 1
    assert unlinked.locator("a").count() == 0
    assert lines.filter(has_text="window.__pwned = 1").first.locator("a").count() == 1
    assert_nothing_ran(page, "#steps")
