"""Forking servers: each worker forked from a configured master exports its own spans.

A fork copies whatever another thread had half done. The master's sampling-rule poller
makes its first request while gunicorn forks the workers; a worker forked while that
request imported the "idna" codec (``getaddrinfo`` needs it) could never resolve the
endpoint again, and lost every span it made. The second test forces that timing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import httpx

from sdk.collector import Collector
from sdk.conftest import ScenarioRunner, clean_environ
from support.missing import require_module
from threadline.demo.processes import free_port

WORKERS: Final = 2
REQUESTS: Final = 16
# Spans leave every 100 ms: a worker that cannot export loses its spans, it does not send
# them late, so waiting longer than this only slows down a failing run.
SPANS_TIMEOUT_S: Final = 10.0
START_TIMEOUT_S: Final = 20.0
# The forked child has flushed (or given up) before the scenario returns.
CHILD_SPANS_TIMEOUT_S: Final = 5.0


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    for _ in range(int(START_TIMEOUT_S / 0.1)):
        if process.poll() is not None or time.monotonic() > deadline:
            break
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not start: {log.read_text()}")


def test_spans_from_every_preforked_gunicorn_worker_arrive(
    collector: Collector, tmp_path: Path
) -> None:
    """Under gunicorn --preload, every worker's spans reach the endpoint, none twice, each
    with the worker's own ``process.pid`` on the resource."""
    if shutil.which("gunicorn") is None:
        require_module("gunicorn")
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = clean_environ(
        {
            "THREADLINE_ENDPOINT": collector.endpoint,
            "THREADLINE_EXPORT_DELAY_MS": "100",
            "THREADLINE_STATS_INTERVAL_S": "0",
            # The app's directory, then the tree under test (not whatever is installed).
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
    )
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", str(WORKERS),
               "-b", f"127.0.0.1:{port}", "gunicorn_app:app"]  # fmt: skip
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_until_serving(url, process, log)
            with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
                answers = list(pool.map(lambda _: httpx.get(url, timeout=10), range(REQUESTS)))
            assert all(a.status_code == 200 for a in answers)
            pids = {a.json()["pid"] for a in answers}
            spans = collector.wait_for(
                lambda got: sum(s.name == "forked" for s in got) >= REQUESTS + 1,
                timeout_s=SPANS_TIMEOUT_S,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    forked = [s for s in spans if s.name == "forked"]
    # REQUESTS answered by the test, plus the one readiness probe.
    assert len(forked) == REQUESTS + 1
    assert len({s.span_id for s in forked}) == len(forked)
    assert {s.attributes["worker.pid"] for s in forked} >= pids
    assert len(pids) == WORKERS, "requests did not spread over the workers"
    # Each worker's resource names the worker, not the master that configured before forking.
    assert all(s.resource.get("process.pid") == s.attributes["worker.pid"] for s in forked), [
        (s.resource.get("process.pid"), s.attributes["worker.pid"]) for s in forked
    ]


def test_a_child_forked_while_a_threadline_thread_imports_exports_its_spans(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """A fork while the rule poller's first request is importing the "idna" codec (what
    gunicorn --preload does right after configure()) leaves the child able to export."""
    result = run_scenario("fork_mid_import")
    found = result.output
    assert found["child_flushed"], (found, result.stderr)
    spans = collector.wait_for(
        lambda got: any(s.name == "from-child" for s in got), timeout_s=CHILD_SPANS_TIMEOUT_S
    )
    child = [s for s in spans if s.name == "from-child"]
    assert [s.resource.get("process.pid") for s in child] == [found["child_pid"]]
