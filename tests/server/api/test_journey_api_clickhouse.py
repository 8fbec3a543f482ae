"""``/api/journeys/map`` and ``/api/funnels`` from `threadline serve --store chdb://…`.

The scripted shoppers (``support.journey_script``) are stored on chDB first (one
process opens a chDB directory at a time), then a real server answers over HTTP
with the counts and the planted cause the DuckDB store's API test expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.journey_script import FUNNEL, WINDOW_END_MS, shoppers
from support.processes import threadline_serve
from threadline.server.batch import SpanBatch
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.store_url import parse

WINDOW: Final = f"window=1h&end={WINDOW_END_MS}"
DOCUMENT: Final = {"funnels": [{"name": "checkout", "steps": list(FUNNEL)}]}


def get(url: str) -> Any:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_map_and_funnel_over_http_on_chdb(tmp_path: Path) -> None:
    """The map's transitions and stopped-here counts, the funnel's conversion and its
    first factors (the payments error, then the trial plan) match the script."""
    directory = tmp_path / "ch"
    store = ClickHouseStore(parse(f"chdb://{directory}"))
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
    finally:
        store.close()
    with threadline_serve(tmp_path, "--store", f"chdb://{directory}") as server:
        api = f"{server.url}/api"
        found = get(f"{api}/journeys/map?{WINDOW}")
        moves = {(t["source"], t["target"]): t["count"] for t in found["transitions"]}
        assert moves == {
            ("web GET /product", "web POST /cart"): 190,
            ("web POST /cart", "web POST /checkout"): 190,
            ("web POST /checkout", "web POST /pay"): 125,
        }
        ended = {s["id"]: s["ended"] for s in found["steps"]}
        assert ended == {
            "web GET /product": 10,
            "web POST /cart": 0,
            "web POST /checkout": 65,
            "web POST /pay": 125,
        }
        assert "user-" not in str(found)
        assert "shopper-" not in str(found)

        assert httpx.put(f"{api}/funnels", json=DOCUMENT, timeout=30).status_code == 200
        funnel = get(f"{api}/funnels/checkout?{WINDOW}")
        assert [s["journeys"] for s in funnel["steps"]] == [200, 190, 190, 125]
        assert funnel["steps"][3]["conversion"] == pytest.approx(125 / 190)
        checkout = funnel["drop_offs"][2]
        first = checkout["factors"][0]
        assert (first["kind"], first["service"], first["stopped_with"]) == ("error", "payments", 45)
        plans = [f for f in checkout["factors"] if f["kind"] == "attribute"]
        assert [(f["key"], f["value"], f["stopped_with"]) for f in plans] == [
            ("app.plan", "trial", 20)
        ]
        assert "shopper-" not in str(funnel)
