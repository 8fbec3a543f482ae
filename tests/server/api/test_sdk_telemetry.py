"""The SDK's own ``threadline.sdk.stats`` spans are telemetry, not user traffic.

A real server holds user traffic of two services plus the stats spans their SDKs
sent (attributes exactly as the SDK builds them). Every list a person reads is
checked to hold data first, then to hold no stats span; the service's SDK page
holds the figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.sdk.export.stats import ExportStats
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore

MS: Final = 1_000_000
NOW: Final = time.time_ns() - 60_000 * MS  # a minute ago: inside every default window


def _user_traffic() -> list[SpanRecord]:
    spans = []
    for i in range(6):
        trace = f"{i + 1:032x}"
        start = NOW + i * 1000 * MS
        status = StatusCode.ERROR if i >= 3 else StatusCode.UNSET
        spans += [
            span_record(trace, f"{i + 1:016x}", None, "web", "GET /cart", start,
                        start + (50 + i * 40) * MS, session_id=f"s-{i}", user_id="u-1",
                        status=status),
            span_record(trace, f"{i + 101:016x}", f"{i + 1:016x}", "web", "GET cart", start + MS,
                        start + 40 * MS, kind=SpanKind.CLIENT, session_id=f"s-{i}"),
            span_record(trace, f"{i + 201:016x}", f"{i + 101:016x}", "cart", "GET cart",
                        start + 2 * MS, start + 39 * MS, kind=SpanKind.SERVER, status=status,
                        session_id=f"s-{i}"),
        ]  # fmt: skip
    return spans


def _stats_span(n: int, service: str, pid: int, exported: int, at_ns: int) -> SpanRecord:
    stats = ExportStats(
        exported=exported,
        dropped={"queue_full": 7, "rejected": 0},
        retried=3,
        failed_requests=1,
        queued=40,
    )
    attributes: dict[str, Any] = {
        **stats.as_attributes(),
        "threadline.sdk.queue.capacity": 2048,
        "process.pid": pid,
    }
    return span_record(
        f"{0xABC000 + n:032x}", f"{0xABC000 + n:016x}", None, service, SDK_STATS_SPAN,
        at_ns, at_ns, kind=SpanKind.INTERNAL, attributes=attributes, scope_name="threadline.sdk",
    )  # fmt: skip


STATS: Final = [
    _stats_span(1, "web", 4242, 100, NOW + 1000 * MS),
    _stats_span(2, "web", 4242, 250, NOW + 9000 * MS),  # the same process, later: it counts
    _stats_span(3, "web", 777, 30, NOW + 5000 * MS),
    _stats_span(4, "cart", 999, 60, NOW + 2000 * MS),
    # A worker that served nothing in the window, only reported on its exporter.
    _stats_span(5, "idle-worker", 555, 0, NOW + 3000 * MS),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db: Path = tmp_path_factory.mktemp("sdk-stats") / "spans.duckdb"
    with live_server(db) as live:
        live.store.write(SpanBatch.from_records([*_user_traffic(), *STATS])).result()
        yield live.api_url


def get(url: str) -> Any:
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    return response.json()


# (endpoint, how to pull the rows out of its answer) for every list a person reads.
LISTS: Final = [
    ("/traces?limit=100", lambda a: a["traces"]),
    ("/traces?service=web&limit=100", lambda a: a["traces"]),
    ("/traces?order=slowest&limit=100", lambda a: a["traces"]),
    ("/journeys?limit=100", lambda a: a["journeys"]),
    ("/users/u-1/journey", lambda a: a["traces"]),
    ("/operations", lambda a: a["operations"]),
    ("/services", lambda a: a["services"]),
    ("/services/web/red", lambda a: a["operations"]),
    ("/service-map", lambda a: a["services"]),
    ("/service-map", lambda a: a["edges"]),
    ("/slow?service=web", lambda a: a["operations"]),
    ("/errors/hotspots?service=web", lambda a: a["operations"]),
]


@pytest.mark.parametrize(("path", "rows"), LISTS, ids=[path for path, _ in LISTS])
def test_stats_spans_are_in_no_list(api: str, path: str, rows: Any) -> None:
    """Each list holds the user traffic, and nothing of the SDK's stats spans."""
    found = rows(get(api + path))
    assert found, f"{path} returned no rows: the sweep reached no data"
    text = repr(found)
    assert SDK_STATS_SPAN not in text
    assert "abc00" not in text  # no stats trace id either


def test_red_counts_only_requests(api: str) -> None:
    """RED of a service, on its page and on the map, counts its requests, not SDK reports."""
    red = get(f"{api}/services/web/red")
    assert red["totals"]["requests"] == 6
    nodes = {node["name"]: node["requests"] for node in get(f"{api}/service-map")["services"]}
    assert nodes == {"web": 6, "cart": 6}
    operations = get(f"{api}/operations")["operations"]
    assert {(o["service"], o["operation"]) for o in operations} == {
        ("web", "GET /cart"),
        ("cart", "GET cart"),
    }
    assert {op["operation"] for op in red["operations"]} == {"GET /cart"}
    assert sum(t["span_count"] for t in get(f"{api}/traces?limit=100")["traces"]) == 18


def test_the_service_page_data_holds_the_sdk_figures(api: str) -> None:
    """/services/web/sdk gives each process's last report: exported, dropped, retried, queue."""
    answer = get(f"{api}/services/web/sdk")
    by_pid = {p["instance"].rsplit(" ", 1)[-1]: p for p in answer["processes"]}
    assert set(by_pid) == {"4242", "777"}
    latest = by_pid["4242"]
    assert (latest["exported_spans"], latest["reports"]) == (250, 2)
    assert latest["dropped_spans"] == 7
    assert latest["dropped_by_reason"]["queue_full"] == 7
    assert latest["retried_spans"] == 3
    assert (latest["queued_spans"], latest["queue_capacity"]) == (40, 2048)
    assert latest["queue_use"] == pytest.approx(40 / 2048)
    assert answer["totals"] == {"exported_spans": 280, "dropped_spans": 14, "retried_spans": 6}


def test_stats_spans_are_stored_and_readable_by_id(tmp_path: Path) -> None:
    """Kept out of lists, the stats spans are still stored: nothing sent is lost."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(SpanBatch.from_records(STATS)).result()
        assert [s.name for s in store.get_trace(STATS[0].trace_id)] == [SDK_STATS_SPAN]
    finally:
        store.close()
