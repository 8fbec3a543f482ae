"""The operations API marks a service past the cap on operation names, on a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.aggregates import OTHER_OPERATION
from threadline.server.batch import SpanBatch
from threadline.server.storage.duckdb.rollups import OPERATION_CAP

MS: Final = 1_000_000
PAST_CAP: Final = 12


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server holding ``OPERATION_CAP + PAST_CAP`` names of web and one of cart."""
    now = time.time_ns() - 60_000 * MS
    flood = [
        span_record(f"{n + 1:032x}", "1" * 16, None, "web", f"GET /item/{n:04d}", now, now + MS)
        for n in range(OPERATION_CAP + PAST_CAP)
    ]
    calm = span_record("f" * 32, "2" * 16, None, "cart", "add", now, now + MS)
    path: Path = tmp_path_factory.mktemp("cap") / "spans.duckdb"
    with live_server(path) as server:
        server.store.write(SpanBatch.from_records([*flood, calm])).result()
        yield server.api_url


def get(api: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{api}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_operations_name_the_capped_service_and_mark_its_other_row(api: str) -> None:
    """/operations lists capped services; the (other) row holds the names past the cap."""
    answer = get(api, "/operations", window="15m")
    assert answer["capped_services"] == [{"service": "web", "kept_operations": OPERATION_CAP}]
    web = [o for o in answer["operations"] if o["service"] == "web"]
    assert len(web) == OPERATION_CAP + 1
    (other,) = [o for o in web if o["other"]]
    assert (other["operation"], other["requests"]) == (OTHER_OPERATION, PAST_CAP)
    assert not any(o["other"] for o in answer["operations"] if o["service"] == "cart")
    only_cart = get(api, "/operations", service="cart", window="15m")
    assert only_cart["capped_services"] == []


def test_service_red_says_whether_the_service_is_capped(api: str) -> None:
    """A service's RED carries ``capped`` and how many names are kept."""
    web = get(api, "/services/web/red", window="1h")  # 1-minute buckets: the rollups
    assert (web["capped"], web["kept_operations"]) == (True, OPERATION_CAP)
    assert [o["operation"] for o in web["operations"] if o["other"]] == [OTHER_OPERATION]
    assert web["totals"]["requests"] == OPERATION_CAP + PAST_CAP
    cart = get(api, "/services/cart/red", window="1h")
    assert (cart["capped"], cart["kept_operations"]) == (False, None)
    # 15-second buckets are finer than the rollups: a scan lists every name, nothing folded.
    fine = get(api, "/services/web/red", window="15m")
    assert (fine["capped"], len(fine["operations"])) == (False, OPERATION_CAP + PAST_CAP)
