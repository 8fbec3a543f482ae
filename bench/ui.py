"""Trace page speed in a real browser: first render and scrolling of a large trace.

    python bench/ui.py --spans 10000

Stores one trace of ``--spans`` spans (a batch job: a root, stages, many small spans
under each, a few deep call chains; every span with realistic attributes) and a
trace a tenth of that size in a DuckDB file, serves them with ``create_app`` on
127.0.0.1, and opens each trace page in headless Chromium (the system's
``/usr/bin/chromium``, driven by Playwright). For each it prints:

  - the API answer alone (GET /api/traces/{id}, fetched by the bench): time and size;
  - time to first render: the page's ``threadline-ready`` performance mark, i.e. from
    navigation start until the waterfall is drawn, with the navigation-timing steps;
  - DOM weight: rows in the DOM against spans in the trace;
  - scroll responsiveness: for jumps to random places, the time from setting
    ``scrollTop`` until the second animation frame after it (rows drawn and painted);
    for a continuous scroll of one screen per frame, the frame intervals;
  - collapse-all / expand-all: time until the next frame.

and the ratios large/small for the same run. Each page is loaded once to warm up,
then ``--runs`` times; the run with the median first render is reported (and the
median API time), so one noisy load does not decide the figures. Every wait is bounded; the server
stops and the browser closes in all cases.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import httpx

from threadline.server.batch import SpanBatch
from threadline.server.model import SpanEvent, SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore

# The server is the one the tests use (tests/support), so the bench serves pages as they do.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live_server import live_server

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
VIEWPORT: Final = {"width": 1280, "height": 900}
MS: Final = 1_000_000
# Longest any page may take to draw, and any scripted measurement to finish.
PAGE_TIMEOUT_MS: Final = 60_000
JUMPS: Final = 30
SCROLL_FRAMES: Final = 120
SERVICES: Final = ("scheduler", "ledger", "warehouse", "notifier")

# Runs in the page: jump to random rows and time until the second frame after each.
_JUMPS_JS: Final = """async ([jumps, seed]) => {
  const box = document.getElementById('rows');
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const times = [];
  for (let k = 0; k < jumps; k++) {
    const t0 = performance.now();
    box.scrollTop = Math.floor(random() * (box.scrollHeight - box.clientHeight));
    await frame();
    await frame();
    times.push(performance.now() - t0);
  }
  return { times, rows: box.querySelectorAll('.row').length };
}"""

# Runs in the page: scroll one step per frame and record the frame intervals.
_SCROLL_JS: Final = """async ([frames]) => {
  const box = document.getElementById('rows');
  box.scrollTop = 0;
  const step = box.clientHeight;
  const intervals = [];
  let last = await new Promise((resolve) => requestAnimationFrame(resolve));
  for (let k = 0; k < frames; k++) {
    box.scrollTop += step;
    const now = await new Promise((resolve) => requestAnimationFrame(resolve));
    intervals.push(now - last);
    last = now;
  }
  return intervals;
}"""

# Runs in the page once drawn: navigation timing, the API request, the page's own marks.
_TIMING_JS: Final = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const api = performance.getEntriesByType('resource')
    .find((entry) => entry.name.includes('/api/traces/'));
  const mark = (name) => performance.getEntriesByName(name)[0].startTime;
  return {
    responseEnd: nav.responseEnd,
    domContentLoaded: nav.domContentLoadedEventEnd,
    apiStart: api.startTime,
    apiResponseStart: api.responseStart,
    apiEnd: api.responseEnd,
    loaded: mark('threadline-trace-loaded'),
    ready: mark('threadline-ready'),
    nodes: document.getElementsByTagName('*').length,
    rows: document.querySelectorAll('#rows .row').length,
  };
}"""

# Runs in the page: click a button and time until the frame after it.
_CLICK_JS: Final = """async ([id]) => {
  const t0 = performance.now();
  document.getElementById(id).click();
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return performance.now() - t0;
}"""


def _span_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def big_trace(trace_id: str, spans: int, *, seed: int = 3) -> list[SpanRecord]:
    """A batch job of ``spans`` spans: stages of item spans, and some deep call chains."""
    rng = random.Random(seed)
    base = time.time_ns() - 60 * 1000 * MS
    total = 30 * 1000 * MS
    records: list[SpanRecord] = []

    def add(
        parent: SpanRecord | None,
        service: str,
        name: str,
        start: int,
        length: int,
        kind: SpanKind = SpanKind.INTERNAL,
        failed: bool = False,
    ) -> SpanRecord:
        record = SpanRecord(
            trace_id=trace_id,
            span_id=_span_id(rng),
            parent_span_id=parent.span_id if parent else None,
            service_name=service,
            name=name,
            kind=kind,
            start_ns=start,
            end_ns=start + max(1000, length),
            status=StatusCode.ERROR if failed else StatusCode.UNSET,
            status_message="row locked" if failed else "",
            attributes={
                "db.system": "postgresql",
                "db.statement": f"UPDATE ledger SET state = $1 WHERE id = {len(records)}",
                "job.item": len(records),
                "job.batch": "2025-11-21",
                "net.peer.name": "ledger-db.internal",
                "thread.name": f"worker-{len(records) % 8}",
            },
            resource={
                "service.name": service,
                "host.name": f"{service}-1",
                "service.version": "2.1",
            },
            events=(SpanEvent("retry", start + length // 2, {"attempt": 2}),) if failed else (),
        )
        records.append(record)
        return record

    root = add(None, "scheduler", "nightly reconcile", base, total, SpanKind.SERVER)
    stages = max(1, spans // 200)
    stage_length = total // stages
    while len(records) < spans:
        for s in range(stages):
            if len(records) >= spans:
                break
            service = SERVICES[s % len(SERVICES)]
            stage_start = base + s * stage_length
            stage = add(root, service, f"stage {s}", stage_start, stage_length - MS)
            items = min(spans - len(records), 150)
            for k in range(items):
                start = stage_start + k * (stage_length // max(1, items))
                length = rng.randint(1, 40) * MS // 10
                failed = rng.random() < 0.002
                add(stage, service, "UPDATE ledger", start, length, SpanKind.CLIENT, failed)
            # A deep chain: retries calling through services, 30 levels down.
            parent = stage
            for depth in range(min(30, spans - len(records))):
                start = stage_start + depth * MS
                length = stage_length // 2 - depth * MS
                parent = add(
                    parent, SERVICES[depth % len(SERVICES)], f"call {depth}", start, length
                )
    return records[:spans]


def seed(db: Path, traces: dict[str, list[SpanRecord]]) -> None:
    store = DuckDBStore(db)
    try:
        for spans in traces.values():
            for start in range(0, len(spans), 2000):
                store.write(SpanBatch.from_records(spans[start : start + 2000])).result()
    finally:
        store.close()


def measure_page(browser: Any, base_url: str, trace_id: str) -> dict[str, Any]:
    """Open the trace page in a fresh context and time drawing, scrolling and toggling."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base_url}/trace/{trace_id}")
        page.wait_for_selector("body[data-ready=true]")
        timing = page.evaluate(_TIMING_JS)
        page.wait_for_selector("body[data-ready-critical=true]")
        jumps = page.evaluate(_JUMPS_JS, [JUMPS, 7])
        intervals = page.evaluate(_SCROLL_JS, [SCROLL_FRAMES])
        collapse_ms = page.evaluate(_CLICK_JS, ["collapse-all"])
        expand_ms = page.evaluate(_CLICK_JS, ["expand-all"])
        if errors:
            raise RuntimeError(f"the page failed: {errors}")
        measured: dict[str, Any] = {**timing, "jumps": jumps, "intervals": intervals}
        return {**measured, "collapse_ms": collapse_ms, "expand_ms": expand_ms}
    finally:
        context.close()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def report(label: str, spans: int, api_s: float, api_bytes: int, m: dict[str, Any]) -> None:
    jumps = m["jumps"]["times"]
    frames = m["intervals"]
    slow_frames = sum(interval > 50 for interval in frames)
    lines = [
        f"\n{label}: {spans:,} spans",
        f"  API answer           {api_s * 1000:8.1f} ms  ({api_bytes / 1e6:.1f} MB JSON, median)",
        f"  first render         {m['ready']:8.1f} ms  from navigation start",
        f"    HTML received      {m['responseEnd']:8.1f} ms",
        f"    DOM ready          {m['domContentLoaded']:8.1f} ms",
        f"    API request sent   {m['apiStart']:8.1f} ms",
        f"    API first byte     {m['apiResponseStart']:8.1f} ms",
        f"    API answer in      {m['apiEnd']:8.1f} ms",
        f"    JSON parsed        {m['loaded']:8.1f} ms",
        f"  rows in the DOM      {m['rows']:8d}     ({m['nodes']:,} elements on the page)",
        f"  scroll jump settles  {statistics.median(jumps):8.1f} ms median, "
        f"{p95(jumps):.1f} p95, {max(jumps):.1f} max over {len(jumps)} jumps "
        "(two frames, 33 ms at 60 Hz, is the floor)",
        f"  continuous scroll    {statistics.median(frames):8.1f} ms/frame median, "
        f"{max(frames):.1f} max, {slow_frames} of {len(frames)} frames over 50 ms",
        f"  collapse all         {m['collapse_ms']:8.1f} ms to next frame",
        f"  expand all           {m['expand_ms']:8.1f} ms to next frame",
    ]
    print("\n".join(lines))


def measure_trace(
    browser: Any, base_url: str, trace_id: str, runs: int
) -> tuple[float, int, dict[str, Any]]:
    """Median API time, answer size, and the page run with the median first render."""
    api_times, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = httpx.get(f"{base_url}/api/traces/{trace_id}", timeout=60.0)
        api_times.append(time.perf_counter() - t0)
        answer.raise_for_status()
        size = len(answer.content)
    measure_page(browser, base_url, trace_id)  # warm-up: caches, JIT
    pages = sorted((measure_page(browser, base_url, trace_id) for _ in range(runs)), key=_ready)
    return statistics.median(api_times), size, pages[len(pages) // 2]


def _ready(measured: dict[str, Any]) -> float:
    return float(measured["ready"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000, help="spans in the large trace")
    parser.add_argument("--runs", type=int, default=3, help="page loads measured per trace")
    args = parser.parse_args(argv)
    if args.spans < 100:
        parser.error("--spans must be at least 100")
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be from 1 to 20")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("needs the playwright package (pip install playwright)", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2

    large_id, small_id = "b1" * 16, "5a" * 16
    traces = {
        large_id: big_trace(large_id, args.spans),
        small_id: big_trace(small_id, args.spans // 10),
    }
    with tempfile.TemporaryDirectory(prefix="threadline-bench-ui-") as tmp:
        db = Path(tmp) / "spans.duckdb"
        seed(db, traces)
        with live_server(db, lifespan=True) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                results = {
                    trace_id: measure_trace(browser, server.url, trace_id, args.runs)
                    for trace_id in (small_id, large_id)
                }
            finally:
                browser.close()
    for label, trace_id in (("small trace", small_id), ("large trace", large_id)):
        api_s, size, measured = results[trace_id]
        report(label, len(traces[trace_id]), api_s, size, measured)
    (large_api, _, large), (small_api, _, small) = results[large_id], results[small_id]
    jump_ratio = statistics.median(large["jumps"]["times"]) / statistics.median(
        small["jumps"]["times"]
    )
    print(f"\nlarge / small ({len(traces[large_id]) // len(traces[small_id])}x the spans):")
    print(f"  API answer      {large_api / small_api:6.1f}x")
    print(f"  first render    {large['ready'] / small['ready']:6.1f}x")
    print(f"  rows in the DOM {large['rows'] / max(1, small['rows']):6.1f}x")
    print(f"  scroll jump     {jump_ratio:6.1f}x (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
