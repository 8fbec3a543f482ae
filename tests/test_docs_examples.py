"""Examples in the user docs run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from support.processes import threadline_serve
from threadline.demo.shopper_script import demo_funnel_toml
from threadline.server.funnel_defs import load_toml

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL)


def _example(page: str, marker: str = "") -> str:
    """The one Python block of ``page`` holding ``marker`` (the first, when several do)."""
    return next(block for block in _python_blocks(page) if marker in block)


def _run_against(
    example: str, port: int, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a docs example with its endpoint (port 4318) pointed at ``port``; it must
    exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", example.replace("4318", str(port))],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_troubleshooting_probe_prints_the_headers_a_hop_carries(tmp_path: Path) -> None:
    """The propagation probe in docs/troubleshooting.md prints traceparent and baggage."""
    (probe,) = _python_blocks("troubleshooting.md")
    env = {
        **os.environ,
        # Nothing listens there: the probe must work without a server.
        "THREADLINE_ENDPOINT": "http://127.0.0.1:9",
        "THREADLINE_EXPORT_TIMEOUT_S": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"'traceparent': '00-[0-9a-f]{32}-[0-9a-f]{16}-03'", done.stdout)
    assert "'baggage': 'session.id=s-123'" in done.stdout


def test_server_page_example_sends_a_span_with_the_stock_exporter(tmp_path: Path) -> None:
    """The stock-exporter example in docs/server.md stores its span in a running server."""
    with threadline_serve(tmp_path) as server:
        _run_against(_example("server.md", "OTLPSpanExporter"), server.port)
        with urllib.request.urlopen(f"{server.url}/api/services", timeout=5) as answer:
            services = json.load(answer)["services"]
        assert {"name": "billing", "operations": ["charge"]} in services


def test_logs_page_example_sends_a_log_line_with_the_stock_exporter(tmp_path: Path) -> None:
    """The stock log exporter example in docs/logs.md stores its line, linked to its trace."""
    with threadline_serve(tmp_path) as server:
        _run_against(_example("logs.md", "OTLPLogExporter"), server.port)
        url = f"{server.url}/api/logs?service=billing&severity=warn&text=declined"
        with urllib.request.urlopen(url, timeout=5) as answer:
            [line] = json.load(answer)["logs"]
        assert line["body"] == "card declined for order 42"
        assert len(line["trace_id"]) == 32


def test_logs_page_sdk_example_exports_a_warning(tmp_path: Path) -> None:
    """The configure(logs=True) example in docs/logs.md stores its warning with its trace."""
    with threadline_serve(tmp_path) as server:
        _run_against(_example("logs.md", "logs=True"), server.port)
        with urllib.request.urlopen(f"{server.url}/api/logs?service=billing", timeout=5) as answer:
            [line] = json.load(answer)["logs"]
        assert line["body"] == "card declined for order 42"
        assert len(line["trace_id"]) == 32
        assert line["scope"] == "billing"


def test_logs_page_stats_example_prints_the_log_counters(tmp_path: Path) -> None:
    """The threadline.stats().logs example in docs/logs.md runs and prints its counter."""
    with threadline_serve(tmp_path) as server:
        done = _run_against(_example("logs.md", "stats.logs"), server.port)
        assert done.stdout.strip() == "log records dropped: 0"


def test_logs_page_search_example_finds_the_trace_that_logged(tmp_path: Path) -> None:
    """The trace search example in docs/logs.md prints the trace of the SDK example's
    warning, found by its text and severity."""
    with threadline_serve(tmp_path) as server:
        _run_against(_example("logs.md", "logs=True"), server.port)
        done = _run_against(_example("logs.md", "log_text"), server.port)
        with urllib.request.urlopen(f"{server.url}/api/logs?service=billing", timeout=5) as answer:
            [line] = json.load(answer)["logs"]
        assert done.stdout.split() == [line["trace_id"], "billing", "charge"]


def test_every_relative_link_in_the_docs_resolves() -> None:
    """README and docs pages link only to files that exist."""
    pages = [DOCS.parent / "README.md", *DOCS.glob("*.md"), *DOCS.glob("adr/*.md")]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_alerting_example_burns_thirty_times_the_budget(tmp_path: Path) -> None:
    """The example in docs/alerting.md sends its traffic, sets its SLO and prints the
    figures the page says it prints, against a real `threadline serve`."""
    with threadline_serve(tmp_path) as server:
        (example,) = _python_blocks("alerting.md")
        done = _run_against(example, server.port, timeout=120)
    assert done.stdout.splitlines() == ["events 600 bad 180", "burn 1h 30", "fast page True"]


def test_the_demo_funnel_in_the_journeys_page_is_the_one_the_demo_ships(tmp_path: Path) -> None:
    """docs/journeys.md shows the ``[[funnel]]`` the demo's server reads, as it reads it."""
    page = (DOCS / "journeys.md").read_text(encoding="utf-8")
    section = page.split("## The demo's scripted shoppers", 1)[1]
    (shown,) = re.findall(r"```toml\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    (tmp_path / "shown.toml").write_text(shown, encoding="utf-8")
    (tmp_path / "shipped.toml").write_text(demo_funnel_toml(), encoding="utf-8")
    assert load_toml(tmp_path / "shown.toml") == load_toml(tmp_path / "shipped.toml")
    assert [s.operation for s in load_toml(tmp_path / "shown.toml").funnels[0].steps][2] == (
        "POST /checkout"
    )
