"""The analysis endpoints of the REST API on a real server over the generated shop.

Expected values are computed from the generated spans in the test (percentiles
with ``statistics.quantiles``), not copied from earlier answers.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from threadline.server.analysis import sketch
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind

from .shop import BASE, MS, WINDOW_END, S, Shop, build_shop

DOCS: Final = Path(__file__).resolve().parents[3] / "docs" / "analysis.md"
ANALYSIS_PATHS: Final = (
    "/api/operations",
    "/api/services/{service}/red",
    "/api/service-map",
    "/api/slow",
    "/api/errors/hotspots",
    "/api/propagation",
    "/api/compare",
    "/api/traces/{trace_id}/critical-path",
    "/api/journeys/{session_id}/narrative",
)
# The shop's window, as a client names it: 11 minutes ending at WINDOW_END (Unix ms).
WINDOW: Final = {"window": "11m", "end": str(WINDOW_END // MS)}
CHECKOUT: Final = {"service": "gateway", "operation": "POST /checkout"}


@pytest.fixture(scope="module")
def shop() -> Shop:
    return build_shop()


@pytest.fixture(scope="module")
def api(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the API of a real uvicorn server over the shop."""
    with live_server(tmp_path_factory.mktemp("analysis-api") / "spans.duckdb") as server:
        server.store.write(SpanBatch.from_records(shop.spans)).result()
        yield server.api_url


def get(api: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{api}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(api: str, path: str, expected: int, **params: Any) -> str:
    response = httpx.get(f"{api}{path}", params=params, timeout=30)
    assert response.status_code == expected, response.text
    body = response.json()
    assert set(body) == {"error"}
    return str(body["error"])


def p95_ms(values: list[int]) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[94] / MS, 3)


def test_service_map_answers_edges_with_calls_errors_and_percentiles(api: str, shop: Shop) -> None:
    """/service-map has each edge once, with its calls and the callee's p95 in milliseconds."""
    answer = get(api, "/service-map", **WINDOW)
    edges = {(e["caller"], e["callee"]): e for e in answer["edges"]}
    payments = [s.duration_ns for s in shop.spans if s.name == "charge"]
    assert edges[("gateway", "payments")]["calls"] == len(payments)
    assert edges[("gateway", "payments")]["kind"] == "call"
    # Read from the rollups: within the latency sketch's relative error.
    assert edges[("gateway", "payments")]["latency_ms"]["p95"] == pytest.approx(
        p95_ms(payments), rel=sketch.ALPHA + 1e-3
    )
    queue = edges[("gateway", "notifications")]
    assert queue["kind"] == "message"
    assert set(queue["queue_dwell_ms"]) == {"p50", "p90", "p95", "p99"}
    assert {s["name"] for s in answer["services"]} >= {"gateway", "payments", "inventory"}
    assert any(e["callee_operation"] == "charge" for e in answer["operation_edges"])
    assert answer["window"]["end_ns"] == WINDOW_END // MS * MS


def test_service_red_has_totals_operations_and_buckets(api: str, shop: Shop) -> None:
    """/services/{s}/red counts the service's entry spans per operation and per bucket."""
    answer = get(api, "/services/gateway/red", bucket="1m", **WINDOW)
    roots = [s for s in shop.spans if s.service_name == "gateway" and s.kind is SpanKind.SERVER]
    assert answer["totals"]["requests"] == len(roots)
    assert answer["totals"]["errors"] == sum(s.is_error for s in roots)
    assert answer["bucket_ms"] == 60_000.0
    assert sum(b["requests"] for b in answer["buckets"]) == len(roots)
    starts = [b["start_ns"] for b in answer["buckets"]]
    assert all(later - earlier == 60 * S for earlier, later in itertools.pairwise(starts))
    assert {op["operation"] for op in answer["operations"]} == {"GET /products", "POST /checkout"}
    minute = 60 * S
    first_bucket = [s for s in roots if s.start_ns < BASE // minute * minute + minute]
    by_start = {b["start_ns"]: b for b in answer["buckets"]}
    assert by_start[BASE // minute * minute]["requests"] == len(first_bucket)
    default = get(api, "/services/gateway/red", **WINDOW)
    assert len(default["buckets"]) <= 61


def test_operations_lists_red_per_operation(api: str) -> None:
    """/operations lists every operation's RED; service= keeps one service's."""
    every = get(api, "/operations", **WINDOW)["operations"]
    assert {(o["service"], o["operation"]) for o in every} >= {("payments", "charge")}
    only = get(api, "/operations", service="inventory", **WINDOW)["operations"]
    assert [o["operation"] for o in only] == ["reserve"]
    assert only[0]["errors"] > 0
    assert 0 < only[0]["error_rate"] < 1


@pytest.mark.parametrize("measure", ["critical_path", "self_time"])
def test_slow_ranks_the_planted_cause_first(api: str, measure: str) -> None:
    """/slow names the slow provider call and payment.provider=slowpay first, either measure."""
    answer = get(api, "/slow", percentile="90", measure=measure, **CHECKOUT, **WINDOW)
    assert answer["measure"] == measure
    top = answer["operations"][0]
    assert (top["service"], top["operation"]) == ("payments", "provider call")
    assert top["growth_ms"] > 100
    # Groups this small are counted whole, so self times have no margin; critical paths
    # walk a hundred traces of each group, fewer than the usual ones: a margin.
    walked_in_part = measure == "critical_path" and (
        answer["baseline_walked"] < answer["baseline_traces"]
    )
    assert (top["growth_margin_ms"] > 0) == walked_in_part
    assert top["tied"] is False
    first = answer["attributes"][0]
    assert (first["key"], first["value"]) == ("payment.provider", "slowpay")
    assert first["slow_share"] > first["baseline_share"]
    assert answer["slow_traces"] > 0
    assert answer["example_trace_ids"]


def test_error_hotspots_rank_the_failing_host(api: str) -> None:
    """/errors/hotspots ranks where errors start and the value failed traces share."""
    answer = get(api, "/errors/hotspots", **CHECKOUT, **WINDOW)
    top = answer["operations"][0]
    assert (top["service"], top["operation"]) == ("inventory", "reserve")
    assert top["failed_share"] > top["baseline_share"]
    first = answer["attributes"][0]
    assert (first["key"], first["value"]) == ("host.name", "inventory-2")
    whole = get(api, "/errors/hotspots", **WINDOW)
    assert whole["service"] is None
    assert whole["failed_traces"] == answer["failed_traces"]


def test_propagation_reports_the_broken_hops(api: str, shop: Shop) -> None:
    """/propagation lists the services and message hop that lose trace context."""
    answer = get(api, "/propagation", **WINDOW)
    assert answer["healthy"] is False
    broken = {s["service"]: s for s in answer["services"] if s["unparented"]}
    assert set(broken) == {"inventory", "notifications"}
    assert broken["inventory"]["operations"][0]["example_trace_id"] == shop.detached_trace
    (hop,) = answer["message_hops"]
    assert (hop["broken"], hop["linked"]) == (1, 1)
    assert [hop["example_producer_trace_id"], hop["example_consumer_trace_id"]] == list(
        shop.broken_hop_trace
    )
    assert answer["orphans"] == [
        {"service": "catalog", "orphan_spans": 1, "example_trace_id": shop.orphan_trace}
    ]


def test_trace_search_by_attribute_sort_and_cursor(api: str, shop: Shop) -> None:
    """attr filters, order=slowest and next_cursor pages through exactly the matching traces."""
    seen: list[str] = []
    params: dict[str, Any] = {"attr": ["payment.provider=slowpay"], "order": "slowest"}
    for _ in range(100):
        page = get(api, "/traces", limit="4", **params)
        seen += [t["trace_id"] for t in page["traces"]]
        durations = [t["duration_ms"] for t in page["traces"]]
        assert durations == sorted(durations, reverse=True)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert set(seen) == shop.slowpay_ids
    both = get(api, "/traces", attr=["payment.provider=slowpay", "http.route=/checkout"])
    assert both["traces"]
    assert get(api, "/traces", attr="http.route=/checkout", journey_id="none")["traces"] == []


@pytest.mark.parametrize(
    "hostile", ["' OR 1=1 --", "x=y' OR '1'='1", '"; DROP TABLE spans; --', "<b>x</b>", "%"]
)
def test_hostile_attribute_filters_are_plain_data(api: str, hostile: str) -> None:
    """Injection-looking attribute keys and values answer 200 with no trace, and change nothing."""
    before = get(api, "/stats")
    assert get(api, "/traces", attr=f"payment.provider={hostile}")["traces"] == []
    assert get(api, "/traces", attr=f"{hostile}=slowpay")["traces"] == []
    assert get(api, "/stats") == before


def test_journeys_failed_and_slowest(api: str, shop: Shop) -> None:
    """/journeys?failed=true lists only journeys with an error, slowest first with order=slowest."""
    failing = {s.session_id for s in shop.spans if s.is_error}
    answer = get(api, "/journeys", failed="true", order="slowest", limit="1000")["journeys"]
    assert {j["session_id"] for j in answer} == failing
    assert all(j["error_count"] > 0 for j in answer)
    clean = get(api, "/journeys", failed="false", limit="1000")["journeys"]
    assert all(j["error_count"] == 0 for j in clean)


def test_trace_answer_carries_error_origin_and_completeness(api: str, shop: Shop) -> None:
    """A failed checkout names where its error started; fix-ups and completeness are shown."""
    failed = next(s.trace_id for s in shop.spans if s.is_error and s.name == "POST /checkout")
    trace = get(api, f"/traces/{failed}")
    origin = trace["errors"]["origin"]
    assert (origin["service"], origin["operation"]) == ("inventory", "reserve")
    assert [p["service"] for p in origin["propagated_by"]] == ["gateway", "gateway"]
    assert trace["errors"]["trace_failed"] is True
    assert trace["complete"] is True  # old enough to have settled, nothing orphaned
    assert trace["skew_adjustments"] == []
    orphaned = get(api, f"/traces/{shop.orphan_trace}")
    assert orphaned["complete"] is False
    assert orphaned["completeness"]["missing_parent_ids"] == ["00000000deadbeef"]


def test_critical_path_of_a_slow_checkout(api: str, shop: Shop) -> None:
    """/traces/{id}/critical-path tiles the trace and gives payments most of a slowpay checkout."""
    slow = sorted(shop.slowpay_ids)[0]
    answer = get(api, f"/traces/{slow}/critical-path")
    segments = answer["segments"]
    assert segments[0]["start_ns"] == answer["start_ns"]
    assert all(a["end_ns"] == b["start_ns"] for a, b in itertools.pairwise(segments))
    assert answer["top_service"] == "payments"
    assert answer["shares"][0]["name"] == "payments"
    assert answer["spans"][0]["operation"] == "provider call"
    assert "critical-path" not in error_of(api, f"/traces/{'0' * 7}/critical-path", 400)


def test_journey_narrative_tells_failed_steps(api: str, shop: Shop) -> None:
    """/journeys/{s}/narrative has one step per trace, failed ones with where they failed."""
    failing = next(s for s in shop.spans if s.is_error and s.name == "POST /checkout")
    story = get(api, f"/journeys/{failing.session_id}/narrative")
    traces = {s.trace_id for s in shop.spans if s.session_id == failing.session_id}
    assert {step["trace_id"] for step in story["steps"]} == traces
    failed_step = next(step for step in story["steps"] if step["trace_id"] == failing.trace_id)
    assert failed_step["failed"] is True
    assert failed_step["error"]["service"] == "inventory"
    assert story["failed_step_count"] >= 1
    assert "no journey" in error_of(api, "/journeys/nobody/narrative", 404)


def test_compare_two_checkouts(api: str, shop: Shop) -> None:
    """/compare?a=&b= lists the operations of b against a, largest difference first."""
    slow = sorted(shop.slowpay_ids)[0]
    fast = next(t for t in shop.checkout_ids if t not in shop.slowpay_ids)
    answer = get(api, "/compare", a=fast, b=slow)
    assert (answer["baseline_trace_id"], answer["candidate_trace_id"]) == (fast, slow)
    assert answer["duration_diff_ms"] > 100
    differences = [abs(op["duration_diff_ms"]) for op in answer["operations"]]
    assert differences == sorted(differences, reverse=True)
    assert "'a'" in error_of(api, "/compare", 400, a="nope", b=slow)
    assert "'b'" in error_of(api, "/compare", 400, a=fast)
    assert "no trace" in error_of(api, "/compare", 404, a=fast, b="f" * 32)


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/traces", {"attr": "no-equals-sign"}, "attr"),
        ("/traces", {"attr": "=value"}, "attr"),
        ("/traces", {"attr": [f"k{i}=v" for i in range(11)]}, "attr"),
        ("/traces", {"order": "random"}, "order"),
        ("/traces", {"offset": "-1"}, "offset"),
        ("/traces", {"offset": "100001"}, "offset"),
        ("/traces", {"cursor": "not-a-cursor"}, "cursor"),
        ("/traces", {"cursor": "WyJyZWNlbnQiLDEsIngiXQ"}, "cursor"),
        ("/traces", {"cursor": "x", "offset": "3"}, "offset"),
        ("/traces", {"journey_id": "j" * 2000}, "journey_id"),
        ("/journeys", {"failed": "maybe"}, "failed"),
        ("/operations", {"window": "forever"}, "window"),
        ("/operations", {"window": "0s"}, "window"),
        ("/service-map", {"end": "tomorrow"}, "end"),
        ("/services/gateway/red", {"bucket": "0s"}, "bucket"),
        ("/services/gateway/red", {"window": "1h", "bucket": "1ms"}, "bucket"),
        ("/slow", {"operation": "POST /checkout"}, "service"),
        ("/slow", {"service": "gateway", "percentile": "100"}, "percentile"),
        ("/slow", {"service": "gateway", "percentile": "ninety"}, "percentile"),
        ("/slow", {"service": "gateway", "percentile": "0"}, "percentile"),
        ("/slow", {"service": "gateway", "measure": "vibes"}, "measure"),
        ("/slow", {"service": "gateway", "limit": "0"}, "limit"),
        ("/errors/hotspots", {"operation": "POST /checkout"}, "service"),
        ("/propagation", {"window": "1"}, "window"),
        ("/compare", {"a": "1" * 32}, "b"),
    ],
)
def test_bad_analysis_parameters_are_400_naming_them(
    api: str, path: str, params: dict[str, Any], named: str
) -> None:
    """Each new parameter is validated: a bad value answers 400 naming it."""
    assert f"'{named}'" in error_of(api, path, 400, **params)


def test_a_cursor_of_another_order_is_refused(api: str) -> None:
    """A next_cursor from a slowest-first search cannot page a newest-first one."""
    cursor = get(api, "/traces", order="slowest", limit="2")["next_cursor"]
    assert "slowest" in error_of(api, "/traces", 400, cursor=cursor)


def test_unknown_service_is_404(api: str) -> None:
    """RED, slow requests or hotspots of a service that never sent a span answer 404."""
    assert "no service" in error_of(api, "/services/nosuch/red", 404)
    assert "no service" in error_of(api, "/slow", 404, service="nosuch")
    assert "no service" in error_of(api, "/errors/hotspots", 404, service="<b>x</b>'--")


def test_openapi_lists_the_analysis_endpoints(api: str) -> None:
    """The generated API description covers every analysis endpoint."""
    assert set(get(api, "/openapi.json")["paths"]) >= set(ANALYSIS_PATHS)


def test_every_analysis_endpoint_is_documented() -> None:
    """docs/analysis.md has a section for each analysis endpoint."""
    documented = DOCS.read_text(encoding="utf-8")
    for path in ANALYSIS_PATHS:
        assert f"### `GET {path}`" in documented, path
