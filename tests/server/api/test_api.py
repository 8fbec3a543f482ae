"""The REST API against a real server and a real DuckDB file holding known traces.

The data: one session ``s-alpha`` (user ``u-1``) browsing, adding to the cart
(a database error) and checking out; a later session ``s-beta`` (user ``u-2``);
a nightly job without a session whose root never arrived, sent twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode

BASE: Final = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS: Final = 1_000_000
DOCS: Final = Path(__file__).resolve().parents[3] / "docs" / "server.md"

T_BROWSE: Final = "1" * 32
T_CART: Final = "2" * 32
T_CHECKOUT: Final = "3" * 32
T_BETA: Final = "4" * 32
T_NIGHTLY: Final = "5e" * 16
UNKNOWN: Final = "f" * 32
HOSTILE_NAME: Final = "<script>alert(1)</script>"


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    start_ms: float,
    end_ms: float,
    **extra: Any,
) -> SpanRecord:
    return span_record(
        trace_id,
        span_id,
        parent,
        service,
        name,
        BASE + int(start_ms * MS),
        BASE + int(end_ms * MS),
        kind=SpanKind.SERVER if parent is None else SpanKind.INTERNAL,
        **extra,
    )


def _alpha(trace_id: str, span_id: str, parent: str | None, *args: Any, **extra: Any) -> SpanRecord:
    return _span(trace_id, span_id, parent, *args, session_id="s-alpha", user_id="u-1", **extra)


BROWSE: Final = [
    _alpha(T_BROWSE, "a1" * 8, None, "web", "GET /products", 0, 100),
    _alpha(T_BROWSE, "a2" * 8, "a1" * 8, "catalog", "list products", 10, 60),
]
CART: Final = [
    _alpha(T_CART, "b1" * 8, None, "web", "POST /cart", 2000, 2300),
    _alpha(T_CART, "b2" * 8, "b1" * 8, "cart", "add item", 2020, 2250),
    _alpha(T_CART, "b3" * 8, "b2" * 8, "db", "INSERT cart_items", 2050, 2150,
           status=StatusCode.ERROR, status_message="deadlock detected"),
    _alpha(T_CART, "b4" * 8, "b2" * 8, "db", "SELECT stock", 2100, 2200),  # overlaps b3
]  # fmt: skip
CHECKOUT: Final = [
    _alpha(T_CHECKOUT, "c1" * 8, None, "web", "POST /checkout", 5000, 6500),
    _alpha(T_CHECKOUT, "c2" * 8, "c1" * 8, "payments", "charge card", 5100, 6300,
           attributes={"amount": 12.5, "ratio": float("nan")}),
]  # fmt: skip
BETA: Final = [
    _span(T_BETA, "d1" * 8, None, "web", "GET /products", 20_000, 20_050,
          session_id="s-beta", user_id="u-2"),
    _span(T_BETA, "d2" * 8, "d1" * 8, "web", HOSTILE_NAME, 20_010, 20_020, session_id="s-beta"),
]  # fmt: skip
NIGHTLY: Final = [
    _span(T_NIGHTLY, "e1" * 8, "e0" * 8, "worker", "nightly job", 10_000, 12_500),
    _span(T_NIGHTLY, "e2" * 8, "e1" * 8, "db", "VACUUM", 10_100, 12_000),
]
NEWEST_FIRST: Final = [T_BETA, T_NIGHTLY, T_CHECKOUT, T_CART, T_BROWSE]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the API of a real uvicorn server over the data described above."""
    with live_server(tmp_path_factory.mktemp("api") / "spans.duckdb") as server:
        for spans in (BROWSE, CART, CHECKOUT, BETA, NIGHTLY, NIGHTLY):  # the nightly batch twice
            server.store.write(SpanBatch.from_records(spans)).result()
        yield server.api_url


def get(api: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{api}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def trace_ids(api: str, **params: str) -> list[str]:
    return [t["trace_id"] for t in get(api, "/traces", **params)["traces"]]


def error_of(api: str, path: str, expected: int, **params: str) -> str:
    response = httpx.get(f"{api}{path}", params=params)
    assert response.status_code == expected, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    return str(body["error"])


def test_stats_count_spans_traces_and_sessions(api: str) -> None:
    """/stats counts what is stored: the re-sent batch is stored once."""
    assert get(api, "/stats") == {"spans": 12, "traces": 5, "sessions": 2}


def test_services_list_every_service_and_its_operations(api: str) -> None:
    """/services lists services by name, each with its span names sorted."""
    services = get(api, "/services")["services"]
    assert [s["name"] for s in services] == ["cart", "catalog", "db", "payments", "web", "worker"]
    by_name = {s["name"]: s["operations"] for s in services}
    assert by_name["db"] == ["INSERT cart_items", "SELECT stock", "VACUUM"]
    assert by_name["web"] == [HOSTILE_NAME, "GET /products", "POST /cart", "POST /checkout"]


def test_traces_are_listed_newest_first_with_their_summary(api: str) -> None:
    """/traces without filters lists recent traces newest first, with the contract's fields."""
    traces = get(api, "/traces")["traces"]
    assert [t["trace_id"] for t in traces] == NEWEST_FIRST
    cart = next(t for t in traces if t["trace_id"] == T_CART)
    assert cart == {
        "trace_id": T_CART,
        "start_ns": BASE + 2000 * MS,
        "start": "2023-11-14T22:13:22.000000Z",
        "duration_ms": 300.0,
        "root_service": "web",
        "root_operation": "POST /cart",
        "span_count": 4,
        "error_count": 1,
        "status": "error",
        "services": ["cart", "db", "web"],
        "session_id": "s-alpha",
        "user_id": "u-1",
        "synthetic": False,
    }
    assert next(t for t in traces if t["trace_id"] == T_BROWSE)["status"] == "ok"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "payments"}, [T_CHECKOUT]),
        ({"service": "db"}, [T_NIGHTLY, T_CART]),
        ({"operation": "GET /products"}, [T_BETA, T_BROWSE]),
        ({"service": "web", "operation": "POST /cart"}, [T_CART]),
        ({"status": "error"}, [T_CART]),
        ({"status": "ERROR"}, [T_CART]),
        ({"status": "ok"}, []),
        ({"min_duration": "1s"}, [T_NIGHTLY, T_CHECKOUT]),
        ({"max_duration": "100ms"}, [T_BETA, T_BROWSE]),
        ({"min_duration": "200ms", "max_duration": "2s"}, [T_CHECKOUT, T_CART]),
        ({"min_duration": "1500000us", "max_duration": "1.5s"}, [T_CHECKOUT]),
        ({"start": "2023-11-14T22:13:21.5Z"}, [T_BETA, T_NIGHTLY, T_CHECKOUT, T_CART]),
        ({"end": str((BASE + 3000 * MS) // MS)}, [T_CART, T_BROWSE]),
        ({"start": "1700000001000", "end": "2023-11-14T22:13:30Z"}, [T_CHECKOUT, T_CART]),
        ({"session_id": "s-alpha"}, [T_CHECKOUT, T_CART, T_BROWSE]),
        ({"user_id": "u-2"}, [T_BETA]),
        ({"session_id": "s-alpha", "status": "error"}, [T_CART]),
        ({"limit": "2"}, NEWEST_FIRST[:2]),
        ({"service": "", "status": "", "limit": ""}, NEWEST_FIRST),
    ],
)
def test_trace_filters(api: str, params: dict[str, str], expected: list[str]) -> None:
    """Each /traces filter keeps exactly the matching traces, newest first; empty means any."""
    assert trace_ids(api, **params) == expected


def test_trace_is_a_depth_first_tree_with_self_time(api: str) -> None:
    """/traces/{id} returns the spans in tree order with depth, self time and the summary."""
    trace = get(api, f"/traces/{T_CART}")
    assert trace["trace_id"] == T_CART
    assert trace["summary"]["root_operation"] == "POST /cart"
    assert trace["summary"]["error_count"] == 1
    spans = trace["spans"]
    assert [(s["name"], s["depth"]) for s in spans] == [
        ("POST /cart", 0),
        ("add item", 1),
        ("INSERT cart_items", 2),
        ("SELECT stock", 2),
    ]
    # add item 2020..2250 minus its overlapping db children 2050..2200 → 80 ms.
    assert [s["self_time_ms"] for s in spans] == [70.0, 80.0, 100.0, 100.0]
    assert trace["self_time_by_service_ms"] == {"db": 200.0, "cart": 80.0, "web": 70.0}
    failing = spans[2]
    assert failing["status"] == "error"
    assert failing["status_message"] == "deadlock detected"
    assert failing["service"] == "db"
    assert failing["parent_span_id"] == "b2" * 8
    assert failing["session_id"] == "s-alpha"
    assert failing["duration_ms"] == 100.0
    assert failing["orphan"] is False
    assert set(failing) >= {
        "span_id", "kind", "start_ns", "end_ns", "user_id", "journey_id",
        "attributes", "resource", "events", "links",
    }  # fmt: skip


def test_trace_with_a_missing_root_flags_the_orphan_and_drops_duplicates(api: str) -> None:
    """A span whose parent never arrived is an orphan; a re-sent batch shows each span once."""
    trace = get(api, f"/traces/{T_NIGHTLY}")
    assert [(s["span_id"], s["depth"], s["orphan"]) for s in trace["spans"]] == [
        ("e1" * 8, 0, True),
        ("e2" * 8, 1, False),
    ]
    assert trace["summary"]["span_count"] == 2
    assert trace["summary"]["root_operation"] == "nightly job"


def test_trace_id_is_accepted_in_upper_case(api: str) -> None:
    """Trace ids copied from tools that print upper-case hex still resolve."""
    assert get(api, f"/traces/{T_NIGHTLY.upper()}")["trace_id"] == T_NIGHTLY
    upper = "ABCDEF" + "0" * 26
    assert error_of(api, f"/traces/{upper}", 404) == f"no trace with trace_id '{upper.lower()}'"


def test_non_finite_attribute_values_do_not_break_the_answer(api: str) -> None:
    """A NaN attribute (valid in OTLP) is returned as text instead of failing the request."""
    charge = get(api, f"/traces/{T_CHECKOUT}")["spans"][1]
    assert charge["attributes"] == {"amount": 12.5, "ratio": "nan"}


def test_unknown_trace_is_404(api: str) -> None:
    """A well-formed id that is not stored answers 404 with a message."""
    assert "no trace" in error_of(api, f"/traces/{UNKNOWN}", 404)


@pytest.mark.parametrize("bad_id", ["xyz", "1" * 7, "1" * 33, "g" * 32, "1" * 16 + "/" + "1" * 15])
def test_malformed_trace_id_is_400_naming_the_parameter(api: str, bad_id: str) -> None:
    """A trace id that is not 32 hex characters answers 400 saying what a trace id is."""
    message = error_of(api, f"/traces/{bad_id}", 400)
    assert "trace_id" in message
    assert "32 hexadecimal" in message


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/traces", {"min_duration": "fast"}, "min_duration"),
        ("/traces", {"max_duration": "250"}, "max_duration"),
        ("/traces", {"min_duration": "2s", "max_duration": "1s"}, "min_duration"),
        ("/traces", {"status": "broken"}, "status"),
        ("/traces", {"limit": "0"}, "limit"),
        ("/traces", {"limit": "-1"}, "limit"),
        ("/traces", {"limit": "ten"}, "limit"),
        ("/traces", {"limit": "1001"}, "limit"),
        ("/traces", {"limit": "9" * 5000}, "limit"),
        ("/traces", {"start": "yesterday"}, "start"),
        ("/traces", {"end": "2023-13-45T00:00:00Z"}, "end"),
        ("/traces", {"service": "x" * 2000}, "service"),
        ("/traces", {"start": "9999999999999999"}, "start"),
        ("/traces", {"start": "0001-01-01T00:00:00Z"}, "start"),
        ("/traces", {"max_duration": "99999999999h"}, "max_duration"),
        ("/traces", {"synthetic": "sometimes"}, "synthetic"),
        ("/journeys", {"order": "fastest"}, "order"),
        ("/journeys", {"limit": "many"}, "limit"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    api: str, path: str, params: dict[str, str], named: str
) -> None:
    """A filter value outside what is allowed answers 400 naming the parameter, never 422/500."""
    message = error_of(api, path, 400, **params)
    assert f"'{named}'" in message


def test_bad_parameter_messages_say_what_is_allowed(api: str) -> None:
    """The 400 message lists the allowed values or forms."""
    assert "ok, error" in error_of(api, "/traces", 400, status="broken")
    assert "250ms" in error_of(api, "/traces", 400, min_duration="fast")
    assert "1 to 1000" in error_of(api, "/traces", 400, limit="0")
    assert "RFC 3339" in error_of(api, "/traces", 400, start="yesterday")
    assert "include, exclude, only" in error_of(api, "/traces", 400, synthetic="sometimes")


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR 1=1 --",
        "web' OR '1'='1",
        '"; DROP TABLE spans; --',
        "web%",
        "%",
        "_",
        "*",
        "<script>alert(1)</script>'",
        "web\x00",
        "ü🙂\u202e",
    ],
)
def test_hostile_filter_values_are_plain_data(api: str, hostile: str) -> None:
    """Injection-looking filter values match nothing, answer 200 and change nothing."""
    for name in ("service", "operation", "session_id", "user_id"):
        assert trace_ids(api, **{name: hostile}) == []
    assert error_of(api, f"/journeys/{quote(hostile, safe='')}", 404)
    assert error_of(api, f"/users/{quote(hostile, safe='')}/journey", 404)
    assert get(api, "/stats") == {"spans": 12, "traces": 5, "sessions": 2}


def test_hostile_looking_names_that_exist_are_matched_exactly(api: str) -> None:
    """A span really named like an HTML tag is found by its exact name and returned as text."""
    assert trace_ids(api, operation=HOSTILE_NAME) == [T_BETA]
    names = [s["name"] for s in get(api, f"/traces/{T_BETA}")["spans"]]
    assert names == ["GET /products", HOSTILE_NAME]
    response = httpx.get(f"{api}/traces/{T_BETA}")
    assert response.headers["content-type"] == "application/json"


def test_journeys_recent_and_slowest(api: str) -> None:
    """/journeys lists sessions most recent first, or longest first with order=slowest."""
    recent = get(api, "/journeys")["journeys"]
    assert [j["session_id"] for j in recent] == ["s-beta", "s-alpha"]
    slowest = get(api, "/journeys", order="slowest")["journeys"]
    assert [j["session_id"] for j in slowest] == ["s-alpha", "s-beta"]
    alpha = slowest[0]
    assert alpha == {
        "session_id": "s-alpha",
        "user_id": "u-1",
        "start_ns": BASE,
        "start": "2023-11-14T22:13:20.000000Z",
        "duration_ms": 6500.0,
        "trace_count": 3,
        "span_count": 8,
        "error_count": 1,
        "services": ["cart", "catalog", "db", "payments", "web"],
    }
    assert [j["session_id"] for j in get(api, "/journeys", limit="1")["journeys"]] == ["s-beta"]


def test_journeys_within_a_time_range(api: str) -> None:
    """start/end keep the journeys' traces started in the range, and summarise those."""
    split_ms = str(BASE // MS + 10_000)  # after s-alpha's traces, before s-beta's
    after = get(api, "/journeys", start=split_ms)["journeys"]
    assert [j["session_id"] for j in after] == ["s-beta"]
    before = get(api, "/journeys", end=split_ms)["journeys"]
    assert [j["session_id"] for j in before] == ["s-alpha"]
    assert before[0]["trace_count"] == 3
    # A range that cuts s-alpha counts its traces inside the range: cart and checkout.
    middle = get(api, "/journeys", start=str(BASE // MS + 1000), end=split_ms)["journeys"]
    assert [(j["session_id"], j["trace_count"]) for j in middle] == [("s-alpha", 2)]
    assert "start" in error_of(api, "/journeys", 400, start="yesterday")


def test_session_journey_lists_its_traces_oldest_first_with_think_time(api: str) -> None:
    """/journeys/{session} gives the session's traces in time order and the gap before each."""
    journey = get(api, "/journeys/s-alpha")
    assert (journey["session_id"], journey["user_id"]) == ("s-alpha", "u-1")
    traces = journey["traces"]
    assert [t["trace_id"] for t in traces] == [T_BROWSE, T_CART, T_CHECKOUT]
    assert [t["root_operation"] for t in traces] == [
        "GET /products",
        "POST /cart",
        "POST /checkout",
    ]
    assert [t["gap_ms"] for t in traces] == [None, 1900.0, 2700.0]
    assert traces[1]["status"] == "error"


def test_user_journey_lists_the_users_traces(api: str) -> None:
    """/users/{user}/journey gives the user's traces oldest first, with user_id set."""
    journey = get(api, "/users/u-1/journey")
    assert journey["session_id"] is None
    assert journey["user_id"] == "u-1"
    assert [t["trace_id"] for t in journey["traces"]] == [T_BROWSE, T_CART, T_CHECKOUT]
    assert [t["trace_id"] for t in get(api, "/users/u-2/journey")["traces"]] == [T_BETA]


@pytest.mark.parametrize(
    "path",
    ["/journeys/s-unknown", "/users/u-unknown/journey", "/journeys/a%2Fb", "/users/a%2Fb/journey"],
)
def test_unknown_journey_is_404(api: str, path: str) -> None:
    """A session or user without traces answers 404 in the API's error shape."""
    assert "no journey" in error_of(api, path, 404)


def test_openapi_lists_every_endpoint(api: str) -> None:
    """The generated API description covers every read endpoint."""
    paths = set(get(api, "/openapi.json")["paths"])
    assert paths >= {
        "/api/stats",
        "/api/services",
        "/api/traces",
        "/api/traces/{trace_id}",
        "/api/journeys",
        "/api/journeys/{session_id}",
        "/api/users/{user_id}/journey",
    }


def test_unknown_endpoint_answers_in_the_api_error_shape(api: str) -> None:
    """A mistyped API path is a 404 with an error message, not a bare framework page."""
    assert "no API endpoint /api/trace" in error_of(api, "/trace", 404)
    assert httpx.get(f"{api}/docs").status_code == 200


def test_every_endpoint_is_documented(api: str) -> None:
    """Every endpoint the API serves has a section in one of the docs pages."""
    documented = "".join(page.read_text(encoding="utf-8") for page in DOCS.parent.glob("*.md"))
    paths = get(api, "/openapi.json")["paths"]
    api_paths = {path: methods for path, methods in paths.items() if path.startswith("/api/")}
    assert "/api/traces/{trace_id}" in api_paths
    for path, methods in api_paths.items():
        for method in methods:
            assert f"### `{method.upper()} {path}`" in documented, (method, path)
