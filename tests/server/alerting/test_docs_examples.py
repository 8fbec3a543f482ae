"""The examples of docs/alert-receivers.md and docs/metrics.md run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import httpx

from support.alert_receivers import free_port
from support.live_server import live_server
from support.processes import stop
from support.spans import span_record
from threadline.server.alerting.delivery import Dispatcher, RetryPolicy
from threadline.server.alerting.delivery import receivers as receivers_module
from threadline.server.alerting.notice import AlertNotice, AlertStatus, ExampleTrace
from threadline.server.batch import SpanBatch

DOCS: Final = Path(__file__).resolve().parents[3] / "docs"
WAIT_S: Final = 30.0
MINUTE: Final = 60_000_000_000
MS: Final = 1_000_000
TRACE: Final = "4bf92f3577b34da6a3ce929d0e0e4736"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL)


def test_the_webhook_receiver_example_prints_a_firing_alert(tmp_path: Path) -> None:
    """The receiver of docs/alert-receivers.md, a process of its own, prints what it got."""
    (example,) = python_blocks("alert-receivers.md")
    port = free_port()
    log = tmp_path / "receiver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", example],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PORT": str(port)},
        )
    policy = RetryPolicy(initial_s=0.1, max_s=0.5, deadline_s=WAIT_S)
    hook = receivers_module.webhook(
        f"http://127.0.0.1:{port}/alerts", name="webhook-1", external_url="http://t:4318"
    )
    dispatcher = Dispatcher([hook], policy=policy)
    notice = AlertNotice(
        status=AlertStatus.FIRING,
        labels={"alertname": "SLOBurnRate", "slo": "checkout-errors", "service": "shop",
                "severity": "page"},
        annotations={"summary": "burning 16.2x"},
        starts_at_ns=time.time_ns(),
        generator_url="http://t:4318/slos/checkout-errors",
        example_traces=(ExampleTrace(TRACE, f"http://t:4318/trace/{TRACE}", 812.0, True),),
    )  # fmt: skip
    try:
        dispatcher.notify([notice])  # retried until the receiver listens
        deadline = time.monotonic() + WAIT_S
        while "example trace" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
        stop(process)
    printed = log.read_text()
    assert "firing: SLOBurnRate checkout-errors (page) burning 16.2x" in printed
    assert f"  example trace: http://t:4318/trace/{TRACE}" in printed


def test_the_exemplar_script_lists_buckets_with_their_traces(tmp_path: Path) -> None:
    """The script of docs/metrics.md reads exemplars off a running server."""
    (example,) = python_blocks("metrics.md")
    start = (time.time_ns() // MINUTE - 1) * MINUTE
    span = span_record(TRACE, "a1", None, "web", "GET /pay", start, start + 400 * MS)
    with live_server(tmp_path / "spans.duckdb") as server:
        server.store.write(SpanBatch.from_records([span])).result(timeout=WAIT_S)
        done = subprocess.run(
            [sys.executable, "-c", example],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "THREADLINE_URL": server.url},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"web GET /pay le=0.5: 400 ms {server.url}/trace/{TRACE}" in done.stdout
        assert httpx.get(f"{server.url}/trace/{TRACE}").status_code == 200


def test_every_family_served_is_documented_and_every_documented_one_served(
    tmp_path: Path,
) -> None:
    """The table of docs/metrics.md names exactly the families /metrics serves."""
    documented = set(
        re.findall(r"^\| `(threadline_[a-z_]+)` \|", (DOCS / "metrics.md").read_text(), re.M)
    )
    start = (time.time_ns() // MINUTE - 1) * MINUTE
    caller = span_record("ab" * 16, "a1", None, "web", "GET /pay", start, start + 100 * MS)
    callee = span_record("ab" * 16, "a2", "a1", "pay", "charge", start + MS, start + 50 * MS)
    with live_server(tmp_path / "spans.duckdb", alert_webhook_urls="http://127.0.0.1:9/x") as s:
        s.store.write(SpanBatch.from_records([caller, callee])).result(timeout=WAIT_S)
        text = httpx.get(f"{s.url}/metrics").text
    # The text format names counters with their _total, as the table does.
    assert set(re.findall(r"^# TYPE (\S+) ", text, re.M)) == documented
