"""``GET /api/logs`` on a real server: filters, paging, structured bodies as JSON,
raw user ids found by their pseudonym, bad parameters answered 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.server.log_batch import LogBatch, LogRecord
from threadline.server.user_ids import UserIdPseudonyms

S: Final = 1_000_000_000
T0: Final = 1_700_000_000 * S
TRACE: Final = "ab" * 16
RAW_USER: Final = "alice@example.com"


def record(at_s: int, body: str, **fields: Any) -> LogRecord:
    values: dict[str, Any] = {
        "time_ns": T0 + at_s * S,
        "observed_ns": T0 + at_s * S,
        "trace_id": TRACE,
        "span_id": "01" * 8,
        "service_name": "payments",
        "severity_number": 13,
        "severity_text": "WARN",
        "body": body,
    }
    values.update(fields)
    return LogRecord(**values)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("logs-api") / "spans.duckdb"
    with live_server(db) as running:
        stored_user = UserIdPseudonyms(running.settings.user_id_key).forms(RAW_USER)[-1]
        records = [
            record(1, "retrying the charge"),
            record(2, "card declined", severity_number=17, severity_text="ERROR"),
            record(3, json.dumps({"code": 51, "tags": ["a"]}), body_kind="json"),
            record(4, "<script>alert(1)</script>", service_name="web", trace_id=None),
            record(5, "signed in", session_id="s-1", user_id=stored_user, severity_number=9),
        ]
        running.store.write_logs(LogBatch.from_records(records)).result(timeout=30)
        yield running


def get(server: LiveServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.api_url}/logs", params=params, timeout=30)


def bodies(server: LiveServer, **params: str) -> list[Any]:
    response = get(server, **params)
    assert response.status_code == 200, response.text
    return [row["body"] for row in response.json()["logs"]]


def test_filters_select_and_order_the_records(server: LiveServer) -> None:
    """Trace, service, severity, text and window filters each narrow the answer."""
    assert len(bodies(server, trace=TRACE)) == 4
    assert bodies(server, service="web") == ["<script>alert(1)</script>"]
    assert bodies(server, severity="error") == ["card declined"]
    assert bodies(server, severity="warn", text="CARD") == ["card declined"]
    assert bodies(
        server, start=str((T0 + 2 * S) // 1_000_000), end=str((T0 + 3 * S) // 1_000_000)
    ) == ["card declined"]


def test_a_structured_body_is_answered_as_json_and_markup_as_text(server: LiveServer) -> None:
    """A JSON body comes back as the value it was; markup stays a plain string."""
    assert {"code": 51, "tags": ["a"]} in bodies(server)
    assert "<script>alert(1)</script>" in bodies(server)


def test_a_raw_user_id_finds_the_records_stored_under_its_pseudonym(server: LiveServer) -> None:
    """As for journeys, the raw id is looked up in every form the store may hold it."""
    assert bodies(server, user=RAW_USER) == ["signed in"]
    assert bodies(server, session="s-1") == ["signed in"]


def test_pages_and_newest_first(server: LiveServer) -> None:
    """limit and offset page; order=newest reverses."""
    assert bodies(server, limit="2") == ["retrying the charge", "card declined"]
    assert len(bodies(server, limit="2", offset="4")) == 1
    assert bodies(server, order="newest", limit="1") == ["signed in"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"severity": "loud"}, "severity"),
        ({"order": "sideways"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    server: LiveServer, params: dict[str, str], named: str
) -> None:
    response = get(server, **params)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_the_endpoint_is_described_in_openapi(server: LiveServer) -> None:
    """The OpenAPI description lists GET /api/logs and its filters."""
    described = server.app.openapi()["paths"]["/api/logs"]["get"]
    names = {p["name"] for p in described["parameters"]}
    assert names >= {"trace", "span", "session", "user", "service", "severity", "text", "start"}
