"""Tail sampling switched on in a real server, fed over OTLP/HTTP by the OpenTelemetry SDK."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from support.live_server import live_server

WAIT_TIMEOUT_S: Final = 20.0
WAIT_STEP_S: Final = 0.05


def _spans(failing: int, fine: int) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "web"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(failing + fine):
        with tracer.start_as_current_span(f"GET /page/{n}") as root:
            with tracer.start_as_current_span("SELECT"):
                pass
            if n < failing:
                root.set_status(Status(StatusCode.ERROR, "boom"))
    return exporter


def _wait_for_decisions(stats_url: str, traces: int, spans_deleted: int) -> dict[str, Any]:
    """Tail stats once ``traces`` are decided and ``spans_deleted`` spans are gone (bounded)."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    stats: dict[str, Any] = {}
    for _ in range(int(WAIT_TIMEOUT_S / WAIT_STEP_S) + 1):
        stats = httpx.get(stats_url).json()
        decided = sum(stats["kept"].values()) + stats["dropped"]
        done = decided >= traces and stats["spans_deleted"] >= spans_deleted
        if done or time.monotonic() > deadline:
            break
        time.sleep(WAIT_STEP_S)
    return stats


def test_the_server_keeps_failed_traces_and_deletes_the_rest(tmp_path: Path) -> None:
    """With tail sampling on and no probabilistic share, only the failed traces remain."""
    with live_server(
        tmp_path / "spans.duckdb",
        lifespan=True,
        tail_sampling=True,
        tail_window_s=0.2,
        tail_keep_probability=0.0,
    ) as server:
        finished = _spans(failing=4, fine=6).get_finished_spans()
        result = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces").export(finished)
        assert result.name == "SUCCESS"
        stats = _wait_for_decisions(f"{server.sampling_url}/tail/stats", 10, 12)
        stored = httpx.get(f"{server.url}/api/stats").json()
    assert stats["kept"]["error"] == 4
    assert stats["dropped"] == 6
    assert stats["spans_deleted"] == 12
    assert stored["traces"] == 4
    assert stored["spans"] == 8
