"""Heavy reads against `threadline serve` as a real process: probes keep answering, memory
stays bounded, and a large trace is served in pages to the API, the CLI and the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.load import concurrent_gets, probing, rss_bytes, wide_trace
from support.missing import require_executable, require_module
from support.processes import threadline_serve

pytestmark = pytest.mark.e2e

MIB: Final = 1024 * 1024
TRACE_ID: Final = "ab" * 16
# More readers than the worker thread pool has threads (40): without a read gate
# they fill it, and anything else served from it waits behind seconds of work.
READERS: Final = 44
# Waves of them, so that the probes sample the busy server many times, not a few.
READER_WAVES: Final = 3
# Behind the gate, nine probes in ten answer within 0.1 s; with no gate, 44 readers hold
# the interpreter lock in 40 threads and most probes take 0.6-1.4 s (measured on two
# cores). A percentile, not the worst: the other test worker's bursts may delay one probe.
MAX_PROBE_P90_S: Final = 0.5
# Never a stall near an orchestrator's timeout, burst or not.
MAX_PROBE_WORST_S: Final = 3.0
# The server's own ~150 MB plus one assembled view of the trace, with room to spare;
# 44 concurrent full views of it took several gigabytes.
MAX_PEAK_RSS: Final = 1024 * MIB


def env(**settings: str) -> dict[str, str]:
    return {**os.environ, **{f"THREADLINE_{k.upper()}": v for k, v in settings.items()}}


@pytest.mark.timeout(400)
def test_probes_answer_while_many_viewers_open_a_huge_trace(tmp_path: Path) -> None:
    """/healthz and /readyz stay fast and memory bounded; readers get their page or a 503."""
    spans = wide_trace(TRACE_ID, 20_000)
    with threadline_serve(tmp_path, spans=spans) as server:
        url = f"{server.url}/api/traces/{TRACE_ID}"
        with (
            probing(server.url, server.pid) as health,
            probing(server.url, path="/readyz") as ready,
        ):
            answers = [
                answer
                for _ in range(READER_WAVES)
                for answer in concurrent_gets(url, READERS, timeout_s=120)
            ]
        _, peak = rss_bytes(server.pid)
        page = httpx.get(url, timeout=120).json()
    assert len(health.latencies) > 5
    for probe, log in (("/healthz", health), ("/readyz", ready)):
        assert log.failures == 0, probe
        assert log.percentile(90) < MAX_PROBE_P90_S, f"{probe} p90 {log.percentile(90):.2f} s"
        assert log.worst < MAX_PROBE_WORST_S, f"{probe} worst {log.worst:.2f} s"
    assert peak < MAX_PEAK_RSS, f"peak RSS {peak // MIB} MiB"
    statuses = [answer.status for answer in answers]
    assert 200 in statuses
    assert set(statuses) <= {200, 503}, answers
    assert all(a.retry_after == "1" for a in answers if a.status == 503)
    assert page["span_count"] == 20_000
    assert len(page["spans"]) == 2000  # trace_page_spans


def test_a_large_trace_is_served_in_pages_that_make_the_whole_tree(tmp_path: Path) -> None:
    """Following next_offset yields every span once, parents before children; the CLI gets all."""
    spans = wide_trace(TRACE_ID, 5000)
    with threadline_serve(tmp_path, spans=spans, env=env(trace_page_spans="1000")) as server:
        url = f"{server.url}/api/traces/{TRACE_ID}"
        pages: list[dict[str, Any]] = []
        with httpx.Client(timeout=60) as client:
            answer = client.get(url).json()
            pages.append(answer)
            for _ in range(10):  # 5 pages expected; bounded either way
                if answer["next_offset"] is None:
                    break
                answer = client.get(url, params={"offset": answer["next_offset"]}).json()
                pages.append(answer)
            too_many = client.get(url, params={"limit": "1001"})
            past_end = client.get(url, params={"offset": "5001"})
            small = client.get(url, params={"offset": "4990", "limit": "50"}).json()
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "threadline",
                "trace",
                TRACE_ID,
                "--json",
                "--server",
                server.url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert [len(p["spans"]) for p in pages] == [1000] * 5
    assert all(p["span_count"] == 5000 for p in pages)
    assert [p["offset"] for p in pages] == [0, 1000, 2000, 3000, 4000]
    ids = [span["span_id"] for p in pages for span in p["spans"]]
    assert len(set(ids)) == 5000
    seen: set[str] = set()
    for span in (span for p in pages for span in p["spans"]):
        assert span["parent_span_id"] is None or span["parent_span_id"] in seen
        seen.add(span["span_id"])
    assert too_many.status_code == 400
    assert "limit" in too_many.json()["error"]
    assert past_end.status_code == 400
    assert (len(small["spans"]), small["next_offset"]) == (10, None)
    assert cli.returncode == 0, cli.stderr
    whole = json.loads(cli.stdout)
    assert [span["span_id"] for span in whole["spans"]] == ids


def test_the_waterfall_loads_further_pages_as_it_scrolls(tmp_path: Path) -> None:
    """In Chromium the trace page starts with one page and reaches every span by scrolling."""
    require_executable(str(CHROMIUM))
    sync_api = require_module("playwright.sync_api")
    spans = wide_trace(TRACE_ID, 3000)
    with (
        threadline_serve(tmp_path, spans=spans, env=env(trace_page_spans="1000")) as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            fetched: list[str] = []
            page.on("request", lambda request: fetched.append(request.url))
            page.goto(f"{server.url}/trace/{TRACE_ID}")
            page.wait_for_selector("body[data-ready='true']", timeout=30_000)
            status_first = page.locator("#span-pages").inner_text()
            for _ in range(40):  # bounded: each scroll to the end may fetch one page
                if page.evaluate("document.body.dataset.readyPages === 'true'"):
                    break
                page.evaluate(
                    "const r = document.getElementById('rows'); r.scrollTop = r.scrollHeight"
                )
                page.wait_for_timeout(250)
            rows_height = page.evaluate("document.getElementById('rows-spacer').offsetHeight")
            pages_hidden = page.locator("#span-pages").is_hidden()
        finally:
            browser.close()
    assert status_first.startswith("1,000 of 3,000 spans loaded")
    assert [url for url in fetched if "offset=" in url] == [
        f"{server.url}/api/traces/{TRACE_ID}?offset=1000",
        f"{server.url}/api/traces/{TRACE_ID}?offset=2000",
    ]
    assert rows_height == 3000 * 24  # every span has its row
    assert pages_hidden
    assert errors == []
