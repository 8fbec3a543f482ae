"""The API's fleet answers from rollups equal a scanning store's, over the same shop.

Two real servers hold the generated shop: one keeping rollups, one answering by
scanning spans (``rollups=False``). Error hotspots (their counts and rankings) and
propagation health (every count) must come out the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from threadline.server.batch import SpanBatch

from .shop import MS, WINDOW_END, Shop, build_shop

WINDOW: Final = {"window": "11m", "end": str(WINDOW_END // MS)}
CHECKOUT: Final = {"service": "gateway", "operation": "POST /checkout"}


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Base URLs of a rollup server and a scanning server over the same shop."""
    shop: Shop = build_shop()
    directory = tmp_path_factory.mktemp("rollups-against-scan")
    with (
        live_server(directory / "rollups.duckdb") as rolled,
        live_server(directory / "scan.duckdb", rollups=False) as scanned,
    ):
        for server in (rolled, scanned):
            server.store.write(SpanBatch.from_records(shop.spans)).result()
        yield rolled.api_url, scanned.api_url


def get(api: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{api}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("target", [{}, CHECKOUT, {"service": "inventory"}], ids=str)
def test_error_hotspots_count_and_rank_alike(apis: tuple[str, str], target: dict[str, str]) -> None:
    """Failed and successful requests, where errors start, the values that go with them."""
    rolled, scanned = (get(api, "/errors/hotspots", **target, **WINDOW) for api in apis)
    for key in ("failed_traces", "baseline_traces", "failed_sample", "baseline_sample"):
        assert rolled[key] == scanned[key], key
    assert rolled["failed_traces"] > 0
    assert rolled["operations"] == scanned["operations"]
    assert rolled["attributes"] == scanned["attributes"]


def test_slow_requests_count_and_rank_alike(apis: tuple[str, str]) -> None:
    """The exact threshold, the same slow requests, the same growth and values."""
    rolled, scanned = (get(api, "/slow", measure="self_time", **CHECKOUT, **WINDOW) for api in apis)
    assert rolled["threshold_ms"] == pytest.approx(scanned["threshold_ms"])
    assert (rolled["slow_traces"], rolled["baseline_traces"]) == (
        scanned["slow_traces"],
        scanned["baseline_traces"],
    )
    assert rolled["operations"] == scanned["operations"]
    assert rolled["attributes"] == scanned["attributes"]


def test_propagation_counts_alike(apis: tuple[str, str]) -> None:
    """Every count of the propagation report, and where it is unhealthy."""
    rolled, scanned = (get(api, "/propagation", **WINDOW) for api in apis)
    assert rolled["healthy"] is scanned["healthy"] is False
    assert rolled["services"] == scanned["services"]
    assert rolled["orphans"] == scanned["orphans"]
    assert rolled["message_hops"] == scanned["message_hops"]
