"""``GET /metrics`` leaves synthetic journeys out, as RED does, on real servers.

Two servers on real DuckDB files get the same ordinary traffic; one also gets synthetic
journeys (``journey.synthetic=true``: a probe's or a drill's) through the same
operations and edge, slow and failing. Every request and edge sample of its scrape
(counts, errors, duration sums, histogram buckets) equals the other server's, and the
figures are those of the ordinary traffic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
WAIT_S: Final = 30.0
WEB: Final = {"service": "web", "operation": "GET /pay"}
PAYMENTS: Final = {"service": "payments", "operation": "charge"}
EDGE: Final = {"caller": "web", "callee": "payments", "kind": "call"}
# The families that count requests and edge calls (not ingest counters, which count
# every span received).
TRAFFIC: Final = ("threadline_request", "threadline_edge")
OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"


def call(
    trace: str, start: int, *, root_ms: int, failed: bool = False, synthetic: bool = False
) -> list[SpanRecord]:
    """web GET /pay (root) → CLIENT POST /charge → payments SERVER charge (80 ms)."""
    status = {"status": StatusCode.ERROR} if failed else {}
    marked = {"attributes": {"journey.synthetic": "true"}} if synthetic else {}
    return [
        span_record(trace, "a1", None, "web", "GET /pay", start, start + root_ms * MS,
                    **status, **marked),
        span_record(trace, "a2", "a1", "web", "POST /charge", start + MS, start + 90 * MS,
                    kind=SpanKind.CLIENT, **marked),
        span_record(trace, "a3", "a2", "payments", "charge", start + 2 * MS, start + 82 * MS,
                    kind=SpanKind.SERVER, **status, **marked),
    ]  # fmt: skip


def ordinary(start: int) -> list[SpanRecord]:
    """Four requests: one failing, one slow (400 ms)."""
    return (
        call("1" * 32, start, root_ms=100)
        + call("2" * 32, start + 10 * MS, root_ms=100)
        + call("3" * 32, start + 20 * MS, root_ms=100, failed=True)
        + call("4" * 32, start + 30 * MS, root_ms=400)
    )


def synthetic(start: int) -> list[SpanRecord]:
    """Three failing drill requests of 2 s, and one passing of 100 ms, in the same minute."""
    spans = [
        s
        for n in range(3)
        for s in call(f"{n + 0xA0:032x}", start + (40 + n) * MS, root_ms=2000, failed=True,
                      synthetic=True)
    ]  # fmt: skip
    return spans + call(f"{0xB0:032x}", start + 50 * MS, root_ms=100, synthetic=True)


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, str]:
    """The scrape of the server with ordinary traffic only, of the one with both, and
    the latter's OpenMetrics scrape."""
    # Two minutes ago: inside the minutes every scrape reads live.
    start = (time.time_ns() // MINUTE - 2) * MINUTE
    found = []
    traffic = (("ordinary", ordinary(start)), ("both", ordinary(start) + synthetic(start)))
    for name, spans in traffic:
        with live_server(tmp_path_factory.mktemp(name) / "spans.duckdb") as running:
            running.store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
            response = httpx.get(f"{running.url}/metrics", timeout=WAIT_S)
            assert response.status_code == 200, response.text
            found.append(samples(text_families(response.text)))
            rich = httpx.get(
                f"{running.url}/metrics", headers={"Accept": OPENMETRICS}, timeout=WAIT_S
            )
            assert rich.status_code == 200, rich.text
    return found[0], found[1], rich.text


def samples(families: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for f in families
        for s in f.samples
        if s.name.startswith(TRAFFIC)
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_synthetic_requests_add_nothing_to_the_request_and_edge_families(
    scrapes: tuple[dict[Any, float], dict[Any, float], str],
) -> None:
    """Each request and edge sample (counts, errors, sums, buckets) is the ordinary traffic's."""
    alone, both, _ = scrapes
    assert alone
    assert both.keys() == alone.keys()
    for key, expected in alone.items():
        assert both[key] == pytest.approx(expected), key


def test_the_figures_are_those_of_the_ordinary_traffic(
    scrapes: tuple[dict[Any, float], dict[Any, float], str],
) -> None:
    """Four requests of 100-400 ms with one failed charge: no 2 s drill, no drill failure."""
    _, both, _ = scrapes
    assert value(both, "threadline_requests_total", **WEB) == 4
    assert value(both, "threadline_requests_total", **PAYMENTS) == 4
    assert value(both, "threadline_request_errors_total", **WEB) == 1
    assert value(both, "threadline_request_errors_total", **PAYMENTS) == 1
    assert value(both, "threadline_request_duration_seconds_sum", **WEB) == pytest.approx(0.7)
    assert value(both, "threadline_request_duration_seconds_sum", **PAYMENTS) == pytest.approx(0.32)
    bucket = "threadline_request_duration_seconds_bucket"
    assert value(both, bucket, **WEB, le="0.1") == 3
    assert value(both, bucket, **WEB, le="0.5") == 4
    assert value(both, bucket, **WEB, le="+Inf") == 4
    assert value(both, "threadline_request_duration_seconds_count", **WEB) == 4
    assert value(both, "threadline_edge_calls_total", **EDGE) == 4
    assert value(both, "threadline_edge_errors_total", **EDGE) == 1
    assert value(both, "threadline_edge_duration_seconds_bucket", **EDGE, le="+Inf") == 4
    assert value(both, "threadline_edge_duration_seconds_sum", **EDGE) == pytest.approx(
        0.32, rel=0.01
    )


def test_exemplars_are_ordinary_requests(
    scrapes: tuple[dict[Any, float], dict[Any, float], str],
) -> None:
    """No bucket's exemplar is a synthetic trace (the 2 s drills would be the slowest)."""
    *_, rich = scrapes
    shown = {
        s.exemplar.labels["trace_id"]
        for f in openmetrics_families(rich)
        for s in f.samples
        if s.exemplar is not None
    }
    assert shown
    assert shown <= {c * 32 for c in "1234"}


def test_deleting_a_synthetic_trace_leaves_the_counters_alone(tmp_path: Path) -> None:
    """A synthetic trace deleted between scrapes moves no request counter or sum."""
    start = (time.time_ns() // MINUTE - 2) * MINUTE
    with live_server(tmp_path / "spans.duckdb") as running:
        spans = ordinary(start) + synthetic(start)
        running.store.write(SpanBatch.from_records(spans)).result(timeout=WAIT_S)
        before = samples(text_families(httpx.get(f"{running.url}/metrics").text))
        running.store.delete_traces([f"{0xA0:032x}"])
        after = samples(text_families(httpx.get(f"{running.url}/metrics").text))
    assert value(after, "threadline_requests_total", **WEB) == 4
    assert after == pytest.approx(before)
