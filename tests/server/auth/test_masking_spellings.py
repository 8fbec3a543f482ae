"""Viewer masking whatever the spelling of a sensitive key and however deep it is nested."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList

from support.live_server import LiveServer, live_server
from threadline.server.auth import MASK, SensitiveFields

from .conftest import (
    ADMIN_TOKEN,
    INGEST_TOKEN,
    PROTOBUF,
    TOKENS,
    VIEWER_TOKEN,
    bearer,
    span_request,
)

FIELDS: Final = SensitiveFields.parse("user.id,client.address,enduser.*")
TRACE: Final = "6bf92f3577b34da6a3ce929d0e0e4738"
# Values a viewer must never read, each under a spelling or nesting the sender chose.
HIDDEN: Final = ("alice-mixed-case", "203.0.113.90", "alice-nested", "admin-role-nested")


def test_keys_match_in_any_case() -> None:
    """`User.Id`, `USER_ID` and `Client.Address` are the sensitive fields they spell."""
    answer = {"USER_ID": "a", "attributes": {"User.Id": "b", "Client.Address": "c", "x": "d"}}
    assert FIELDS.mask(answer) == {
        "USER_ID": MASK,
        "attributes": {"User.Id": MASK, "Client.Address": MASK, "x": "d"},
    }
    assert FIELDS.matches("EndUser.Role")


def test_nested_maps_are_masked_by_their_dotted_path() -> None:
    """A map value nested in an attribute is masked where its path names a sensitive field."""
    answer = {
        "attributes": {
            "request": {"user.id": "a", "path": "/x"},
            "user": {"id": "b", "name": "kept"},
            "enduser": {"role": "admin"},
        }
    }
    assert FIELDS.mask(answer) == {
        "attributes": {
            "request": {"user.id": MASK, "path": "/x"},
            "user": {"id": MASK, "name": "kept"},
            "enduser": {"role": MASK},
        }
    }


def test_key_value_pairs_match_in_any_case_and_inside_their_value() -> None:
    """A pair's value is masked for a key in any case, and nested values by the pair's key."""
    rows = [
        {"key": "USER.ID", "value": "a"},
        {"key": "user", "value": {"id": "b", "plan": "pro"}},
        {"key": "http.route", "value": "/x"},
    ]
    assert FIELDS.mask({"attributes": rows}) == {
        "attributes": [
            {"key": "USER.ID", "value": MASK},
            {"key": "user", "value": {"id": MASK, "plan": "pro"}},
            {"key": "http.route", "value": "/x"},
        ]
    }


def _map(**entries: str) -> AnyValue:
    values = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in entries.items()]
    return AnyValue(kvlist_value=KeyValueList(values=values))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("masking-spellings") / "spans.duckdb"
    with live_server(db, tokens=TOKENS) as served:
        request = span_request(
            TRACE,
            attributes={
                "User.Id": "alice-mixed-case",
                "CLIENT.ADDRESS": "203.0.113.90",
                "http.route": "/checkout",
            },
        )
        span = request.resource_spans[0].scope_spans[0].spans[0]
        span.attributes.append(KeyValue(key="request", value=_map(**{"user.id": "alice-nested"})))
        span.attributes.append(KeyValue(key="enduser", value=_map(role="admin-role-nested")))
        response = httpx.post(
            f"{served.url}/v1/traces",
            content=request.SerializeToString(),
            headers={"content-type": PROTOBUF, **bearer(INGEST_TOKEN)},
            timeout=10,
        )
        assert response.status_code == 200
        yield served


def test_a_viewer_reads_no_sensitive_value_in_any_spelling(secured: LiveServer) -> None:
    """Through the API, a viewer gets the trace with every spelling and nesting masked."""
    with httpx.Client(base_url=secured.url, timeout=10) as client:
        as_admin = client.get(f"/api/traces/{TRACE}", headers=bearer(ADMIN_TOKEN))
        as_viewer = client.get(f"/api/traces/{TRACE}", headers=bearer(VIEWER_TOKEN))
    assert as_admin.status_code == 200
    assert as_viewer.status_code == 200
    for value in HIDDEN:
        assert value in as_admin.text  # the data is there for a role allowed to see it
        assert value not in as_viewer.text
    assert "/checkout" in as_viewer.text
    assert MASK in as_viewer.text
