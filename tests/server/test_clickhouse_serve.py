"""`threadline serve --store chdb:///dir`: a real server process on the ClickHouse store.

Ingest, the trace view, search and the service map work; a view the store does not
offer yet answers 501 naming the method; a SIGKILL after the 200 loses no span.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Final

import httpx

from support.load import otlp_json_body
from support.processes import threadline_serve
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.store_url import parse

TRACE: Final = "ab" * 16
JSON: Final = {"Content-Type": "application/json"}


def test_ingest_trace_view_and_search_on_chdb(tmp_path: Path) -> None:
    """Spans posted as OTLP are found by id, by search and on the map; propagation answers 501."""
    store = tmp_path / "ch"
    with threadline_serve(tmp_path, "--store", f"chdb://{store}") as server:
        posted = httpx.post(
            f"{server.url}/v1/traces", content=otlp_json_body(5, 2, trace_id=TRACE), headers=JSON
        )
        assert posted.status_code == 200

        trace = httpx.get(f"{server.url}/api/traces/{TRACE}").json()
        assert len(trace["spans"]) == 5
        found = httpx.get(f"{server.url}/api/traces", params={"service": "load"}).json()
        assert [t["trace_id"] for t in found["traces"]] == [TRACE]
        assert httpx.get(f"{server.url}/api/stats").json()["spans"] == 5

        # The payload's spans start at 2023-11-14T22:13:20Z.
        window = {"end": "2023-11-14T22:30:00Z", "window": "1h"}
        mapped = httpx.get(f"{server.url}/api/service-map", params=window)
        assert mapped.status_code == 200
        assert [node["name"] for node in mapped.json()["services"]] == ["load"]
        propagation = httpx.get(f"{server.url}/api/propagation", params=window)
        assert propagation.status_code == 200
        assert "chdb://" in server.log.read_text()


def test_acknowledged_spans_survive_sigkill(tmp_path: Path) -> None:
    """Every span answered 200 is in the store after the server is killed with SIGKILL."""
    store = tmp_path / "ch"
    acknowledged = 0
    with threadline_serve(tmp_path, "--store", f"chdb://{store}") as server:
        for n in range(10):
            body = otlp_json_body(20, 1, trace_id=f"{n + 1:032x}")
            if httpx.post(f"{server.url}/v1/traces", content=body, headers=JSON).is_success:
                acknowledged += 20
        os.kill(server.pid, signal.SIGKILL)
    assert acknowledged == 200

    reopened = ClickHouseStore(parse(f"chdb://{store}"))
    try:
        assert reopened.counts().spans == acknowledged
    finally:
        reopened.close()
