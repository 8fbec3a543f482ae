"""One user request across every boundary, in separate processes, stored by a real server.

HTTP (FastAPI) → asyncio fan-out → thread pool → RabbitMQ → Redis Streams → NATS → gRPC, five
services exporting to ``python -m threadline serve``; the trace is read back through the REST
API (GET /api/traces/{id}) and every span, parent link and journey key is checked.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from sdk.conftest import clean_environ
from sdk.integrations.services import running_script
from support.missing import require_port
from support.processes import threadline_serve

pytestmark = pytest.mark.e2e

EXPECTED_SPANS: Final = 11
WAIT_S: Final = 30.0
POLL_S: Final = 0.2
SESSION: Final = "s-chain"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real ``threadline serve`` on a free loopback port with its own DuckDB file."""
    with threadline_serve(tmp_path, db=tmp_path / "chain.duckdb", env=clean_environ()) as served:
        yield served.url


def _delete_stream(name: str) -> None:
    import redis

    with redis.Redis(host="127.0.0.1", port=6379) as client:
        client.delete(name)


def _stored_trace(api: httpx.Client, trace_id: str) -> dict[str, Any]:
    """The trace once all its spans are stored (bounded wait)."""
    body: dict[str, Any] = {"spans": []}
    deadline = time.monotonic() + WAIT_S
    for _ in range(int(WAIT_S / POLL_S)):
        response = api.get(f"/api/traces/{trace_id}")
        if response.status_code == 200:
            body = response.json()
            if len(body["spans"]) >= EXPECTED_SPANS or time.monotonic() > deadline:
                break
        time.sleep(POLL_S)
    return body


def test_one_request_is_one_trace_across_every_boundary(server: str, tmp_path: Path) -> None:
    """A request entering over HTTP and leaving over RabbitMQ, Redis Streams, NATS and gRPC is one
    trace with every parent link right, the session on every span, and messaging attributes."""
    for broker, port in (("RabbitMQ", 5672), ("Redis", 6379), ("NATS", 4222)):
        require_port(broker, port)
    name = f"threadline-chain-{uuid.uuid4().hex[:10]}"
    env = {"THREADLINE_ENDPOINT": server, "THREADLINE_EXPORT_DELAY_MS": "50"}
    with ExitStack() as services:
        services.callback(_delete_stream, name)

        def start(role: str, *args: str) -> dict[str, Any]:
            ready: dict[str, Any] = services.enter_context(
                running_script(
                    "chain_service", role, name, *args, env=env, log=tmp_path / f"{role}.log"
                )
            )
            return ready

        inventory = start("inventory")
        start("fulfil", str(inventory["port"]))
        start("relay")
        start("worker")
        edge = start("edge")

        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        response = httpx.post(
            f"http://127.0.0.1:{edge['port']}/order",
            headers={"traceparent": f"00-{trace_id}-{caller}-01", "X-Session-Id": SESSION},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["journey"] == {"session.id": SESSION}
        with httpx.Client(base_url=server, timeout=10) as api:
            stored = _stored_trace(api, trace_id)

    spans = stored["spans"]
    assert stored["trace_id"] == trace_id
    assert len(spans) == EXPECTED_SPANS, [(s["service"], s["name"]) for s in spans]
    print(*(f"{s['service']:16} {s['kind']:9} {s['name']}" for s in spans), sep="\n")
    assert {s["session_id"] for s in spans} == {SESSION}

    def one(service: str, kind: str, system: str | None = None, name: str | None = None) -> Any:
        found = [
            s
            for s in spans
            if s["service"] == f"chain-{service}"
            and s["kind"] == kind
            and (system is None or s["attributes"].get("messaging.system") == system)
            and (name is None or s["name"] == name)
        ]
        assert len(found) == 1, (service, kind, system, name, found)
        return found[0]

    http_server = one("edge", "server")
    price = one("edge", "internal", name="price")
    hand_off = one("edge", "internal", name="hand-off")
    to_rabbit = one("edge", "producer", "rabbitmq")
    from_rabbit = one("worker", "consumer", "rabbitmq")
    to_redis = one("worker", "producer", "redis")
    from_redis = one("relay", "consumer", "redis")
    to_nats = one("relay", "producer", "nats")
    from_nats = one("fulfil", "consumer", "nats")
    grpc_client = one("fulfil", "client")
    grpc_server = one("inventory", "server")

    chain = [
        (http_server, None),
        (price, http_server),
        (hand_off, http_server),
        (to_rabbit, hand_off),
        (from_rabbit, to_rabbit),
        (to_redis, from_rabbit),
        (from_redis, to_redis),
        (to_nats, from_redis),
        (from_nats, to_nats),
        (grpc_client, from_nats),
        (grpc_server, grpc_client),
    ]
    assert http_server["parent_span_id"] == caller
    for child, parent in chain[1:]:
        assert child["parent_span_id"] == parent["span_id"], (child["name"], parent["name"])
        assert not child["orphan"], child["name"]

    for span in (to_rabbit, to_redis, to_nats):
        assert span["attributes"]["messaging.operation.type"] == "send"
        assert span["attributes"]["messaging.destination.name"] == name
    for span in (from_rabbit, from_redis, from_nats):
        assert span["attributes"]["messaging.operation.type"] == "process"
        assert span["attributes"]["messaging.destination.name"] == name
        assert span["attributes"]["threadline.delivery.attempt"] == 1
    assert from_rabbit["attributes"]["messaging.message.id"] == response.json()["message_id"]
    assert (
        from_redis["attributes"]["messaging.message.id"]
        == (to_redis["attributes"]["messaging.message.id"])
    )
    assert grpc_server["attributes"]["rpc.system"] == "grpc"
    assert grpc_server["name"] == grpc_client["name"] == "/threadline.chain.Inventory/Reserve"
