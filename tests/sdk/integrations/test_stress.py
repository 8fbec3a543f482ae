"""200 concurrent requests with different journeys through an async and a threaded service."""

from __future__ import annotations

import json
import secrets
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sdk.collector import Collector

from .services import running_script

REQUESTS = 200
SPANS_PER_REQUEST = 6  # async: server, executor-work, client; threaded: server, 2 × pool-work


def _fanout(url: str, index: int) -> tuple[str, dict[str, Any]]:
    trace_id = secrets.token_hex(16)
    request = urllib.request.Request(
        f"{url}/fanout",
        headers={
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            "X-Session-Id": f"s-{index}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return trace_id, json.loads(response.read())


def test_no_span_carries_another_requests_ids(collector: Collector, tmp_path: Path) -> None:
    """Under 200 concurrent requests, through asyncio fan-out, executor threads, a per-request
    thread and a shared pool, every span carries its own request's trace and session only."""
    env = {
        "THREADLINE_ENDPOINT": collector.endpoint,
        "THREADLINE_EXPORT_DELAY_MS": "50",
        "THREADLINE_QUEUE_SIZE": "8192",
    }
    with (
        running_script("stress_threaded", env=env, log=tmp_path / "threaded.log") as threaded,
        running_script(
            "stress_async",
            f"http://127.0.0.1:{threaded['port']}",
            env=env,
            log=tmp_path / "async.log",
        ) as front,
        ThreadPoolExecutor(max_workers=50) as callers,
    ):
        url = f"http://127.0.0.1:{front['port']}"
        results = list(callers.map(lambda i: _fanout(url, i), range(REQUESTS)))
        expected = REQUESTS * SPANS_PER_REQUEST
        spans = collector.wait_for(lambda got: len(got) >= expected, timeout_s=30)

    session_of = {trace_id: f"s-{i}" for i, (trace_id, _) in enumerate(results)}
    for index, (_, body) in enumerate(results):
        journey = {"session.id": f"s-{index}"}
        assert body["here"] == journey
        assert body["executor"] == journey
        assert body["downstream"] == {"pool": [journey, journey], "here": journey}
    assert len(spans) == expected
    per_trace: dict[str, int] = {}
    for span in spans:
        assert span.trace_id in session_of, span
        assert span.attributes.get("session.id") == session_of[span.trace_id], span
        per_trace[span.trace_id] = per_trace.get(span.trace_id, 0) + 1
    assert set(per_trace.values()) == {SPANS_PER_REQUEST}
