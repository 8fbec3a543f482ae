"""A burst of 100,000 log records from one token at ``POST /v1/logs`` on a real server:
past the token's rate the answer is 429 with Retry-After, another token is still
served, and every record of every accepted request is stored, none twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from support.live_server import LiveServer, live_server
from threadline.server.log_batch import LogQuery

BURST_TOKEN: Final = "burst-token-0123456789"
OTHER_TOKEN: Final = "other-token-0123456789"
REQUESTS: Final = 100
PER_REQUEST: Final = 1000  # 100 requests × 1000 records = the 100k burst
RATE: Final = 10_000  # records per second per token
PROTOBUF: Final = "application/x-protobuf"


def request(number: int, count: int = PER_REQUEST) -> bytes:
    """``count`` WARN records, each body naming its request and place in it."""
    message = ExportLogsServiceRequest()
    resource_logs = message.resource_logs.add()
    service = resource_logs.resource.attributes.add()
    service.key = "service.name"
    service.value.string_value = "burst"
    scope = resource_logs.scope_logs.add()
    for n in range(count):
        record = scope.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + number * PER_REQUEST + n
        record.severity_number = 13
        record.body.string_value = f"burst {number}.{n}"
    return message.SerializeToString()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    tokens = f"ingest:{BURST_TOKEN},ingest:{OTHER_TOKEN}"
    with live_server(tmp_path / "spans.duckdb", tokens=tokens, ingest_rate_per_token=RATE) as live:
        yield live


def post(client: httpx.Client, server: LiveServer, body: bytes, token: str) -> httpx.Response:
    return client.post(
        server.logs_url,
        content=body,
        headers={"content-type": PROTOBUF, "authorization": f"Bearer {token}"},
    )


def test_a_100k_burst_is_limited_per_token_and_loses_nothing_accepted(server: LiveServer) -> None:
    """Of 100 requests of 1000 records sent back to back, those past the rate get 429 with
    Retry-After; the accepted ones are stored whole; the other token is not limited."""
    bodies = [request(number) for number in range(REQUESTS)]
    accepted: list[int] = []
    refused: list[httpx.Response] = []
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        for number, body in enumerate(bodies):  # bounded: REQUESTS requests
            response = post(client, server, body, BURST_TOKEN)
            if response.status_code == 429:
                refused.append(response)
            else:
                assert response.status_code == 200, response.text
                accepted.append(number)
        elapsed_s = time.monotonic() - started
        other = post(client, server, request(REQUESTS, count=10), OTHER_TOKEN)
    assert other.status_code == 200, other.text
    assert accepted
    assert refused
    # The rate held: one second of burst, what refilled while sending, and the one
    # request that may overdraw the bucket.
    assert len(accepted) * PER_REQUEST <= RATE * (elapsed_s + 1) + PER_REQUEST
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in refused)
    assert b"ingest_rate_per_token" in refused[0].content  # the OTLP Status message
    stored = server.store.logs(LogQuery(service="burst", limit=REQUESTS * PER_REQUEST))
    bodies_stored = [record.body for record in stored]
    expected = {f"burst {number}.{n}" for number in accepted for n in range(PER_REQUEST)}
    expected |= {f"burst {REQUESTS}.{n}" for n in range(10)}
    assert len(bodies_stored) == len(expected)
    assert set(bodies_stored) == expected
