"""Masking of sensitive fields in API answers, as a viewer receives them: the masking
rules, then a sweep of every API endpoint over a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.sdk.export.stats import ExportStats
from threadline.server.auth import MASK, SensitiveFields
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogRecord
from threadline.server.model import SpanKind, SpanRecord, StatusCode

from .conftest import ADMIN_TOKEN, TOKENS, VIEWER_TOKEN, bearer

FIELDS = SensitiveFields.parse("user.id, client.address,enduser.*")


def test_matching_keys_and_their_api_spellings_are_masked() -> None:
    """`user.id` in attributes and `user_id` in the API's own fields are both masked."""
    answer = {
        "user_id": "alice",
        "session_id": "s-1",
        "attributes": {"user.id": "alice", "enduser.role": "admin", "http.route": "/x"},
        "resource": {"client.address": "10.0.0.1"},
    }
    assert FIELDS.mask(answer) == {
        "user_id": MASK,
        "session_id": "s-1",
        "attributes": {"user.id": MASK, "enduser.role": MASK, "http.route": "/x"},
        "resource": {"client.address": MASK},
    }


def test_key_value_pairs_mask_their_value() -> None:
    """Analysis answers list attributes as key/value pairs; the value of a sensitive key goes."""
    rows = [{"key": "user.id", "value": "alice", "lift": 3.0}, {"key": "http.route", "value": "/x"}]
    assert FIELDS.mask({"attributes": rows}) == {
        "attributes": [{"key": "user.id", "value": MASK, "lift": 3.0}, rows[1]]
    }


def test_structured_values_are_masked_whole_and_null_stays_null() -> None:
    """A list or map under a sensitive key is replaced whole; a missing user stays null."""
    answer = {"traces": [{"user_id": None, "spans": [{"attributes": {"enduser.ids": [1, 2]}}]}]}
    assert FIELDS.mask(answer) == {
        "traces": [{"user_id": None, "spans": [{"attributes": {"enduser.ids": MASK}}]}]
    }


def test_no_patterns_mask_nothing() -> None:
    """With sensitive_fields empty, answers pass unchanged."""
    answer = {"user_id": "alice"}
    assert SensitiveFields.parse("").mask(answer) is answer
    assert not SensitiveFields.parse(" , ")


def test_values_of_a_sensitive_concentration_are_masked() -> None:
    """A concentration of slow requests names its users under `values`: they are masked too."""
    row = {"key": "user.id", "noun": "users", "count": 2, "values": ["alice", "bob"]}
    other = {"key": "host.name", "values": ["api-1"]}
    assert FIELDS.mask({"concentrations": [row, other]}) == {
        "concentrations": [{**row, "values": MASK}, other]
    }


# The sweep: every API endpoint, called with parameters that make it answer 200 with
# data, by an admin (who sees the sensitive values) and a viewer (who must not).

NOW_NS: Final = time.time_ns()
SESSION: Final = "session-alpha"
SLOW_USER: Final = "alice-the-customer"
SLOW_ADDRESS: Final = "203.0.113.77"
FAST_USER: Final = "bob-the-buyer"
FAST_ADDRESS: Final = "198.51.100.9"
SECRETS: Final = (SLOW_USER, SLOW_ADDRESS, FAST_USER, FAST_ADDRESS)
FAST_TRACES: Final = 6
SLOW_TRACES: Final = 6  # slow and failing: at least MIN_SUPPORT (3) so their values rank


def trace_hex(n: int) -> str:
    return f"{n + 1:032x}"


SLOW_TRACE: Final = trace_hex(FAST_TRACES)
FAST_TRACE: Final = trace_hex(0)


def shop_trace(n: int) -> list[SpanRecord]:
    """Checkout calling payments; the slow ones are slow and fail, with their own user."""
    slow = n >= FAST_TRACES
    user, address = (SLOW_USER, SLOW_ADDRESS) if slow else (FAST_USER, FAST_ADDRESS)
    start = NOW_NS - 60_000_000_000 + n * 1_000_000_000
    duration = (900 if slow else 20) * 1_000_000
    secrets = {"user.id": user, "client.address": address, "enduser.id": user}
    root = span_record(
        trace_hex(n), f"{n:08x}00000001", None, "checkout", "POST /checkout",
        start, start + duration, session_id=SESSION, user_id=user,
        attributes={**secrets, "session.id": SESSION, "http.route": "/checkout"},
        status=StatusCode.ERROR if slow else StatusCode.OK,
    )  # fmt: skip
    charge = span_record(
        trace_hex(n), f"{n:08x}00000002", root.span_id, "payments", "POST /charge",
        start + 1_000_000, start + duration - 1_000_000, kind=SpanKind.SERVER,
        session_id=SESSION, user_id=user, attributes=secrets,
        status=StatusCode.ERROR if slow else StatusCode.OK,
        status_message="card declined" if slow else "",
    )  # fmt: skip
    return [root, charge]


def sdk_stats_span() -> SpanRecord:
    """The checkout SDK's own telemetry, for the service page's export figures."""
    attributes = {**ExportStats(exported=24, queued=1).as_attributes(), "process.pid": 4242}
    return span_record(
        trace_hex(999), "00000000000000ff", None, "checkout", SDK_STATS_SPAN,
        NOW_NS - 1_000_000_000, NOW_NS - 1_000_000_000, kind=SpanKind.INTERNAL,
        attributes=attributes, scope_name="threadline.sdk",
    )  # fmt: skip


SLOS: Final = {
    "slos": [
        {
            "name": "checkout-errors",
            "service": "checkout",
            "operation": "POST /checkout",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        }
    ]
}


def shop_log() -> LogRecord:
    """A payments log line naming the slow user in its journey key, attributes and body."""
    return LogRecord(
        time_ns=NOW_NS - 30_000_000_000, observed_ns=NOW_NS - 30_000_000_000,
        trace_id=SLOW_TRACE, span_id=f"{FAST_TRACES:08x}00000002", service_name="payments",
        severity_number=17, severity_text="ERROR",
        body=json.dumps({"message": "card declined", "user.id": SLOW_USER}), body_kind="json",
        session_id=SESSION, user_id=SLOW_USER,
        attributes={"client.address": SLOW_ADDRESS, "order.id": "o-1"},
    )  # fmt: skip


FUNNELS: Final = {
    "funnels": [
        {
            "name": "checkout",
            "steps": ["POST /checkout", {"service": "payments", "operation": "POST /charge"}],
        }
    ]
}


# A scheduled probe sends the slow user's name in a header: an admin reads it back,
# a viewer reads [masked] (probe headers are often the probed service's credentials).
PROBES: Final = {
    "probes": [
        {
            "name": "checkout",
            "interval": "1d",
            "steps": [{"url": "http://127.0.0.1:9/checkout", "headers": {"X-Customer": SLOW_USER}}],
        }
    ]
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with tokens and the default sensitive fields, holding the shop's traces."""
    db = tmp_path_factory.mktemp("masking") / "spans.duckdb"
    with live_server(db, tokens=TOKENS) as served:
        spans = [span for n in range(FAST_TRACES + SLOW_TRACES) for span in shop_trace(n)]
        spans.append(sdk_stats_span())
        served.store.write(SpanBatch.from_records(spans)).result(timeout=30)
        put = httpx.put(
            f"{served.url}/api/slos", json=SLOS, headers=bearer(ADMIN_TOKEN), timeout=30
        )
        assert put.status_code == 200, put.text
        served.app.state.slo_evaluator.tick()
        put = httpx.put(
            f"{served.url}/api/funnels", json=FUNNELS, headers=bearer(ADMIN_TOKEN), timeout=30
        )
        assert put.status_code == 200, put.text
        put = httpx.put(
            f"{served.url}/api/probes", json=PROBES, headers=bearer(ADMIN_TOKEN), timeout=30
        )
        assert put.status_code == 200, put.text
        served.store.write_logs(LogBatch.from_records([shop_log()])).result(timeout=30)
        yield served


@dataclass(frozen=True, slots=True)
class Call:
    """How to make one endpoint answer with data, and where that data is."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    data: str = ""  # dotted path to the part that must be non-empty ("" = the whole answer)
    sensitive: bool = True  # whether the answer carries attribute values (else: none at all)
    viewer_refused: bool = False  # viewers may not look it up (a sensitive key in the path)


# Every GET endpoint under /api, by its route template. A new endpoint fails
# test_every_api_endpoint_is_swept until it is listed here.
CALLS: Final[Mapping[str, Call]] = {
    "/api/traces": Call("/api/traces", data="traces"),
    "/api/logs": Call("/api/logs", data="logs"),
    "/api/traces/{trace_id}": Call(f"/api/traces/{SLOW_TRACE}", data="spans"),
    "/api/traces/{trace_id}/critical-path": Call(
        f"/api/traces/{SLOW_TRACE}/critical-path", data="segments"
    ),
    "/api/journeys": Call("/api/journeys", data="journeys"),
    "/api/journeys/{session_id}": Call(f"/api/journeys/{SESSION}", data="traces"),
    "/api/journeys/{session_id}/narrative": Call(
        f"/api/journeys/{SESSION}/narrative", data="steps"
    ),
    "/api/users/{user_id}/journey": Call(
        f"/api/users/{SLOW_USER}/journey", data="traces", viewer_refused=True
    ),
    "/api/slow": Call("/api/slow", {"service": "checkout", "percentile": "50"}, data="attributes"),
    "/api/errors/hotspots": Call(
        "/api/errors/hotspots", {"service": "checkout"}, data="attributes"
    ),
    "/api/compare": Call(
        "/api/compare", {"a": FAST_TRACE, "b": SLOW_TRACE}, data="operations", sensitive=False
    ),
    "/api/operations": Call("/api/operations", data="operations", sensitive=False),
    "/api/services": Call("/api/services", data="services", sensitive=False),
    "/api/services/{service}/red": Call(
        "/api/services/checkout/red", data="operations", sensitive=False
    ),
    "/api/services/{service}/sdk": Call(
        "/api/services/checkout/sdk", data="processes", sensitive=False
    ),
    "/api/service-map": Call("/api/service-map", data="services", sensitive=False),
    "/api/propagation": Call("/api/propagation", sensitive=False),
    "/api/stats": Call("/api/stats", sensitive=False),
    "/api/sampling": Call("/api/sampling", sensitive=False),
    "/api/sampling/tail/stats": Call("/api/sampling/tail/stats", sensitive=False),
    "/api/alerts/receivers": Call("/api/alerts/receivers", sensitive=False),
    "/api/slos": Call("/api/slos", data="slos", sensitive=False),
    "/api/slos/{name}": Call("/api/slos/checkout-errors", data="burn_rates", sensitive=False),
    # The values failing checkouts share include the users': masked for viewers.
    "/api/slos/{name}/examples": Call(
        "/api/slos/checkout-errors/examples", data="examples", sensitive=False
    ),
    "/api/slo-status": Call("/api/slo-status", data="slos", sensitive=False),
    "/api/alerts": Call("/api/alerts", data="firing", sensitive=False),
    # Journey maps and funnels show counts, never user ids or attribute values.
    "/api/journeys/map": Call("/api/journeys/map", data="steps", sensitive=False),
    "/api/funnels": Call("/api/funnels", data="funnels", sensitive=False),
    "/api/funnels/{name}": Call("/api/funnels/checkout", data="steps", sensitive=False),
    "/api/probes": Call("/api/probes", data="probes"),
    "/api/probes/results": Call("/api/probes/results", data="drills", sensitive=False),
}
# Search by a (non-sensitive) attribute: the answer still lists each trace's user.
SEARCH_BY_ATTRIBUTE: Final = Call("/api/traces", {"attr": "http.route=/checkout"}, data="traces")


def data_of(answer: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        answer = answer[part]
    return answer


def fetch(served: LiveServer, call: Call, token: str) -> httpx.Response:
    return httpx.get(served.url + call.path, params=call.params, headers=bearer(token), timeout=30)


def test_every_api_endpoint_is_swept(shop: LiveServer) -> None:
    """The sweep covers every GET endpoint the API describes, including ones added later."""
    described = {
        path
        for path, operations in shop.app.openapi()["paths"].items()
        if path.startswith("/api/") and "get" in operations
    }
    assert described - set(CALLS) == set(), "list the new endpoint in CALLS of this module"
    assert set(CALLS) - described == set()


@pytest.mark.parametrize(
    "call",
    [*CALLS.values(), SEARCH_BY_ATTRIBUTE],
    ids=[*CALLS, "/api/traces?attr"],
)
def test_admin_sees_and_viewer_gets_masked(shop: LiveServer, call: Call) -> None:
    """Each endpoint answers 200 with data to both roles; where the answer carries sensitive
    values the admin's holds them and the viewer's holds [masked] in their place."""
    as_admin = fetch(shop, call, ADMIN_TOKEN)
    assert as_admin.status_code == 200, as_admin.text
    assert data_of(as_admin.json(), call.data), as_admin.text
    if call.sensitive:
        assert any(secret in as_admin.text for secret in SECRETS), as_admin.text
    as_viewer = fetch(shop, call, VIEWER_TOKEN)
    if call.viewer_refused:
        assert as_viewer.status_code == 403, as_viewer.text
        return
    assert as_viewer.status_code == 200, as_viewer.text
    assert data_of(as_viewer.json(), call.data), as_viewer.text
    assert [secret for secret in SECRETS if secret in as_viewer.text] == []
    if call.sensitive:
        assert MASK in as_viewer.text


def test_slow_and_hotspot_values_are_masked_where_the_admin_sees_them(shop: LiveServer) -> None:
    """The values that go with slow and failing requests are listed to both; the viewer
    reads [masked] for exactly the sensitive keys and the real value for the others."""
    for template in ("/api/slow", "/api/errors/hotspots"):
        admin_answer = fetch(shop, CALLS[template], ADMIN_TOKEN).json()
        viewer_answer = fetch(shop, CALLS[template], VIEWER_TOKEN).json()
        admin_rows = data_of(admin_answer, "attributes")
        viewer_rows = data_of(viewer_answer, "attributes")
        admin = {(row["key"], row["value"]) for row in admin_rows}
        assert ("client.address", SLOW_ADDRESS) in admin, template
        # The slow set's users are summarised as a concentration naming them under `values`.
        admin_people = {row["key"]: row["values"] for row in admin_answer["concentrations"]}
        viewer_people = {row["key"]: row["values"] for row in viewer_answer["concentrations"]}
        assert SLOW_USER in admin_people["user.id"], template
        assert viewer_people["user.id"] == MASK, template
        assert [row["key"] for row in viewer_rows] == [row["key"] for row in admin_rows]
        for admin_row, viewer_row in zip(admin_rows, viewer_rows, strict=True):
            sensitive = FIELDS.matches(admin_row["key"])
            assert viewer_row["value"] == (MASK if sensitive else admin_row["value"]), template
