"""The read gate on a real HTTP server: reads past the slots and the queue get 503 at once."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.live_server import loopback_listener, serving_asgi
from threadline.server.app import create_app
from threadline.server.read_gate import ReadGate
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ConfigError, ServerSettings


class HeldReads:
    """An ASGI app whose answers wait until ``release`` is set; counts what it started."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        self.started += 1
        if scope["path"].startswith("/api/traces"):
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_reads_beyond_slots_and_queue_get_503_and_others_pass() -> None:
    """With 1 slot and 1 queued, a third read is refused with Retry-After; probes and docs pass."""
    held = HeldReads()
    gate = ReadGate(held, concurrency=1, queue=1, exempt_paths=("/api/docs",))
    with serving_asgi(gate, loopback_listener()) as url, ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.get, f"{url}/api/traces/a", timeout=30)
        second = pool.submit(httpx.get, f"{url}/api/traces/b", timeout=30)
        for _ in range(500):  # bounded wait until both are inside the gate
            if held.started == 1 and gate.waiting == 1:
                break
            threading.Event().wait(0.01)
        refused = httpx.get(f"{url}/api/traces/c", timeout=5)
        probe = httpx.get(f"{url}/healthz", timeout=5)
        docs = httpx.get(f"{url}/api/docs", timeout=5)
        write = httpx.post(f"{url}/api/erase", timeout=5)
        held.release.set()
        answers = [first.result(), second.result()]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "read_concurrency" in refused.json()["error"]
    assert (probe.status_code, docs.status_code, write.status_code) == (200, 200, 200)
    assert [answer.status_code for answer in answers] == [200, 200]
    assert gate.refused == 1


def test_gate_settings_must_be_usable() -> None:
    """No read slot at all, or a negative queue, is refused naming the setting."""
    with pytest.raises(ConfigError, match="read_concurrency"):
        ReadGate(HeldReads(), concurrency=0, queue=1)
    with pytest.raises(ConfigError, match="read_queue"):
        ReadGate(HeldReads(), concurrency=1, queue=-1)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("read_concurrency", 0),
        ("read_queue", -1),
        ("trace_page_spans", 0),
        ("ingest_memory_bytes", 0),
        ("body_timeout_s", 0.0),
    ],
)
def test_server_refuses_unusable_load_settings(tmp_path: Path, setting: str, value: object) -> None:
    """create_app fails at start-up, naming the setting, instead of on the first request."""
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        with pytest.raises(ConfigError, match=setting):
            create_app(ServerSettings(db=tmp_path / "spans.duckdb", **{setting: value}), store)
    finally:
        store.close()
