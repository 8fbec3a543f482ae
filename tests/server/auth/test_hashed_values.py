"""Keyed hashes of redacted values: a viewer may not filter by one, and a server on a
non-loopback address says at start when it hashes with a built-in key."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.redaction.keyed_hash import DEFAULT_KEY
from threadline.server.default_keys import warn_on_default_keys
from threadline.settings import ServerSettings

from .conftest import (
    ADMIN_TOKEN,
    INGEST_TOKEN,
    PROTOBUF,
    TOKENS,
    VIEWER_TOKEN,
    bearer,
    span_request,
)

TRACE: Final = "6bf92f3577b34da6a3ce929d0e0e4738"
ADDRESS: Final = "dave@example.com"


def default_key_hash(value: str) -> str:
    """What anyone can compute: the hash under the built-in (public) redaction key."""
    return "h_" + hmac.new(DEFAULT_KEY.encode(), value.encode(), "sha256").hexdigest()[:32]


@pytest.fixture(scope="module")
def hashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server hashing owner.email at ingest under the built-in key, with tokens."""
    db = tmp_path_factory.mktemp("hashed") / "spans.duckdb"
    with live_server(db, tokens=TOKENS, redaction_keys="owner.email=hash") as served:
        body = span_request(TRACE, attributes={"owner.email": ADDRESS})
        response = httpx.post(
            f"{served.url}/v1/traces",
            content=body.SerializeToString(),
            headers={"content-type": PROTOBUF, **bearer(INGEST_TOKEN)},
        )
        assert response.status_code == 200
        yield served


def test_viewer_may_not_filter_by_a_hashed_value(hashing: LiveServer) -> None:
    """A guessed address, hashed under the public key, would find the trace: 403 for viewers."""
    guess = {"attr": f"owner.email={default_key_hash(ADDRESS)}"}
    with httpx.Client(base_url=hashing.url, timeout=30) as client:
        admin = client.get("/api/traces", params=guess, headers=bearer(ADMIN_TOKEN))
        viewer = client.get("/api/traces", params=guess, headers=bearer(VIEWER_TOKEN))
        plain = client.get(
            "/api/traces", params={"attr": "http.route=/checkout"}, headers=bearer(VIEWER_TOKEN)
        )
    # The filter does confirm the guess (an admin finds the trace)...
    assert admin.status_code == 200
    assert [t["trace_id"] for t in admin.json()["traces"]] == [TRACE]
    # ...so a viewer is refused, with the reason.
    assert viewer.status_code == 403
    assert "owner.email is filtered by a keyed hash" in viewer.json()["error"]
    assert plain.status_code == 200


def test_server_warns_once_about_built_in_keys_off_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Off loopback with no keys, one warning names the settings; with keys or on
    loopback, none."""
    with caplog.at_level(logging.WARNING, logger="threadline.server.default_keys"):
        warn_on_default_keys(ServerSettings(host="0.0.0.0"))
        warn_on_default_keys(ServerSettings(host="127.0.0.1"))
        warn_on_default_keys(
            ServerSettings(host="0.0.0.0", redaction_hash_key="k1", user_id_key="k2")
        )
    # Its own logger's records: another test's threads in this process may log too.
    records = [r for r in caplog.records if r.name == "threadline.server.default_keys"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "THREADLINE_REDACTION_HASH_KEY and THREADLINE_USER_ID_KEY" in message
    assert "confirm a guessed e-mail address" in message
