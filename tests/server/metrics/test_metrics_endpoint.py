"""``GET /metrics`` of a real server on a real DuckDB file, read by prometheus_client's parsers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from support.live_server import LiveServer, live_server
from support.load import otlp_json_body
from support.spans import span_record
from threadline.server.analysis.latency_bounds import BOUNDS_S
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import writer

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
WAIT_S: Final = 30.0
OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
WEB: Final = {"service": "web", "operation": "GET /pay"}
PAYMENTS: Final = {"service": "payments", "operation": "charge"}
EDGE: Final = {"caller": "web", "callee": "payments", "kind": "call"}


def call(trace: str, start: int, *, root_ms: int = 100, failed: bool = False) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT POST /charge → payments SERVER charge (80 ms)."""
    status = {"status": StatusCode.ERROR} if failed else {}
    return [
        span_record(trace, "a1", None, "web", "GET /pay", start, start + root_ms * MS),
        span_record(trace, "a2", "a1", "web", "POST /charge", start + MS, start + 90 * MS,
                    kind=SpanKind.CLIENT),
        span_record(trace, "a3", "a2", "payments", "charge", start + 2 * MS, start + 82 * MS,
                    kind=SpanKind.SERVER, **status),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Two minutes ago: inside the minutes every scrape reads live.
    start = (time.time_ns() // MINUTE - 2) * MINUTE
    spans = (
        call("1" * 32, start)
        + call("2" * 32, start + 10 * MS)
        + call("3" * 32, start + 20 * MS, failed=True)
        + call("4" * 32, start + 30 * MS, root_ms=400)
    )
    with live_server(tmp_path_factory.mktemp("metrics") / "spans.duckdb") as running:
        running.store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        ok = httpx.post(
            running.traces_url,
            content=otlp_json_body(3, 1, trace_id="cd" * 16),
            headers={"Content-Type": "application/json"},
        )
        assert ok.status_code == 200
        refused = httpx.post(running.traces_url, content=b"{}", headers={"Content-Type": "x/y"})
        assert refused.status_code == 415
        yield running


def scrape(server: LiveServer, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=WAIT_S)
    assert response.status_code == 200, response.text
    return response


def samples(families: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], Any]:
    return {(s.name, frozenset(s.labels.items())): s for f in families for s in f.samples}


def value(found: dict[Any, Any], name: str, **labels: str) -> float:
    return float(found[(name, frozenset(labels.items()))].value)


def test_text_format_counts_requests_errors_and_latency_per_operation(server: LiveServer) -> None:
    """The Prometheus text format, parsed: counters and a cumulative histogram per operation."""
    response = scrape(server)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(text_families(response.text))
    assert value(found, "threadline_requests_total", **WEB) == 4
    assert value(found, "threadline_request_errors_total", **PAYMENTS) == 1
    assert value(found, "threadline_request_errors_total", **WEB) == 0
    bucket = "threadline_request_duration_seconds_bucket"
    assert value(found, bucket, **WEB, le="0.05") == 0
    assert value(found, bucket, **WEB, le="0.1") == 3
    assert value(found, bucket, **WEB, le="0.3") == 3
    assert value(found, bucket, **WEB, le="0.5") == 4
    assert value(found, bucket, **WEB, le="+Inf") == 4
    assert value(found, "threadline_request_duration_seconds_count", **WEB) == 4
    assert value(found, "threadline_request_duration_seconds_sum", **WEB) == pytest.approx(0.7)
    assert value(found, "threadline_edge_calls_total", **EDGE) == 4
    assert value(found, "threadline_edge_errors_total", **EDGE) == 1
    edge_sum = value(found, "threadline_edge_duration_seconds_sum", **EDGE)
    assert edge_sum == pytest.approx(0.32, rel=0.01)
    assert value(found, "threadline_edge_duration_seconds_bucket", **EDGE, le="0.1") == 4
    les = sorted({dict(k[1])["le"] for k in found if k[0] == bucket}, key=float)
    assert les == [repr(b) for b in BOUNDS_S] + ["+Inf"]
    assert " # {" not in response.text  # exemplars are OpenMetrics only


def test_ingest_and_drop_counters(server: LiveServer) -> None:
    """OTLP requests by answer (a 415 is a drop), spans received, the write queue."""
    found = samples(text_families(scrape(server).text))
    assert value(found, "threadline_ingest_requests_total", code="200") == 1
    assert value(found, "threadline_ingest_requests_total", code="415") == 1
    assert value(found, "threadline_ingest_spans_total") == 3
    assert value(found, "threadline_store_pending_batches") >= 0
    assert value(found, "threadline_store_max_pending_batches") == 256


def test_openmetrics_buckets_carry_exemplars_of_stored_traces(server: LiveServer) -> None:
    """OpenMetrics by Accept; each exemplar's trace exists and its value fits its bucket."""
    response = scrape(server, OPENMETRICS)
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = list(openmetrics_families(response.text))
    examples = [
        s
        for f in families
        if f.name == "threadline_request_duration_seconds"
        for s in f.samples
        if s.exemplar is not None
    ]
    by_key = {(s.labels["service"], s.labels["le"]): s.exemplar for s in examples}
    # The failing charge is the example of its bucket; the slow root of the 0.5 bucket.
    assert by_key[("payments", "0.1")].labels["trace_id"] == "3" * 32
    assert by_key[("web", "0.5")].labels["trace_id"] == "4" * 32
    assert by_key[("web", "0.5")].value == pytest.approx(0.4)
    bounds = [0.0, *BOUNDS_S, float("inf")]
    for sample in examples:
        le = float(sample.labels["le"])
        below = bounds[bounds.index(le) - 1]
        # Within the 2% a sketch bucket may straddle a bound.
        assert below / 1.02 < sample.exemplar.value <= le * 1.02
        assert sample.exemplar.timestamp is not None
        trace = httpx.get(f"{server.api_url}/traces/{sample.exemplar.labels['trace_id']}")
        assert trace.status_code == 200


def test_counters_do_not_fall_when_a_counted_trace_is_deleted(server: LiveServer) -> None:
    """A trace deleted after a scrape (tail sampling) leaves the counters where they were."""
    before = samples(text_families(scrape(server).text))
    server.store.delete_traces(["1" * 32])
    after = samples(text_families(scrape(server).text))
    assert value(after, "threadline_requests_total", **WEB) == value(
        before, "threadline_requests_total", **WEB
    )


def test_extra_sources_join_and_a_failing_one_is_left_out(server: LiveServer) -> None:
    """``add_source`` serves more families; one that raises is counted, the rest served."""

    def budget() -> list[Metric]:
        gauge = GaugeMetricFamily("threadline_slo_budget_remaining", "test", labels=["slo"])
        gauge.add_metric(["checkout"], 0.75)
        return [gauge]

    def broken() -> list[Metric]:
        raise RuntimeError("a source that fails")

    server.app.state.metrics.add_source("slo_test", budget)
    server.app.state.metrics.add_source("broken_test", broken)
    found = samples(openmetrics_families(scrape(server, OPENMETRICS).text))
    assert value(found, "threadline_slo_budget_remaining", slo="checkout") == 0.75
    assert value(found, "threadline_metrics_source_errors_total", source="broken_test") == 1
    assert value(found, "threadline_requests_total", **WEB) >= 3


def test_metrics_needs_a_reader_token_when_tokens_are_set(tmp_path: Path) -> None:
    """With tokens configured, a scrape without one is 401 and a viewer token reads it."""
    with live_server(
        tmp_path / "spans.duckdb",
        tokens="viewer:viewer-token-0123456789,ingest:ingest-token-0123456789",
    ) as s:
        assert httpx.get(f"{s.url}/metrics").status_code == 401
        ingest = httpx.get(
            f"{s.url}/metrics", headers={"Authorization": "Bearer ingest-token-0123456789"}
        )
        assert ingest.status_code == 403
        viewer = httpx.get(
            f"{s.url}/metrics", headers={"Authorization": "Bearer viewer-token-0123456789"}
        )
        assert viewer.status_code == 200


def test_unfolded_commits_are_counted_until_a_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``threadline_store_unfolded_commits`` and ``/readyz`` count each commit until the
    store folds it (the writer folds only when asked here)."""
    monkeypatch.setattr(writer, "IDLE_FOLD_S", 3600.0)
    start = (time.time_ns() // MINUTE - 2) * MINUTE

    def unfolded(live: LiveServer) -> tuple[float, int]:
        found = samples(text_families(scrape(live).text))
        ready = httpx.get(f"{live.url}/readyz", timeout=WAIT_S).json()
        return value(found, "threadline_store_unfolded_commits"), ready["unfolded_commits"]

    with live_server(tmp_path / "spans.duckdb") as live:
        assert unfolded(live) == (0, 0)
        for n, trace in enumerate(("5" * 32, "6" * 32), start=1):
            live.store.write(SpanBatch.from_records(call(trace, start))).result(timeout=WAIT_S)
            assert unfolded(live) == (n, n)
        live.store.compact_rollups()
        assert unfolded(live) == (0, 0)
