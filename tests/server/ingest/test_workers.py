"""Decoding in worker processes (``workers = 2``) on a real server over loopback.

Spans sent are stored, a malformed request is refused as the in-process decoder
refuses it, a killed worker costs at most a 503 with Retry-After (never a lost
acknowledged span) and the pool comes back, and the workers exit with the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from google.rpc import status_pb2

from support.concurrency import AtOnce
from support.live_server import LiveServer, live_server
from support.processes import threadline_serve
from threadline.server.batch import SpanBatch
from threadline.server.errors import ThreadlineError
from threadline.server.ingest.decode import PayloadFormat, decode
from threadline.server.ingest.span_decoder import SpanDecoder
from threadline.server.ingest.workers import InProcessDecoding, worker_count
from threadline.settings import ConfigError, ServerSettings, load

from .otlp_payloads import one_span_request, string_value

PROTOBUF: Final = PayloadFormat.PROTOBUF.content_type
DEADLINE_S: Final = 60.0
SPANS_PER_REQUEST: Final = 200
# Long enough that a 5,000-span request is being decoded when a worker is killed.
KILLING_S: Final = 1.0


def worker_pids(parent_pid: int | None = None) -> set[int]:
    """The children of ``parent_pid`` (this process) started by multiprocessing's ``spawn``."""
    parent_pid = os.getpid() if parent_pid is None else parent_pid
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == parent_pid and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a process that exited but was not reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def request_body(first_span: int, spans: int = SPANS_PER_REQUEST) -> bytes:
    """``spans`` valid spans of one trace with span ids from ``first_span``."""
    request = one_span_request()
    scope = request.resource_spans[0].scope_spans[0]
    template = scope.spans[0]
    template.attributes.extend([string_value("http.route", "/pay"), string_value("user.id", "u")])
    del scope.spans[:]
    for n in range(first_span, first_span + spans):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.span_id = (n + 1).to_bytes(8, "big")
    return request.SerializeToString()


def post(server: LiveServer, body: bytes) -> httpx.Response:
    return httpx.post(
        server.traces_url, content=body, headers={"content-type": PROTOBUF}, timeout=DEADLINE_S
    )


def post_until_stored(server: LiveServer, body: bytes) -> list[int]:
    """POST like an OTLP exporter: retry 503s after Retry-After; the statuses seen."""
    statuses = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        answer = post(server, body)
        statuses.append(answer.status_code)
        if answer.status_code != 503:
            return statuses
        assert int(answer.headers["retry-after"]) >= 1
        time.sleep(0.2)
    raise AssertionError(f"not stored within {DEADLINE_S} s: {statuses}")


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "pooled.duckdb", lifespan=True, workers=2) as server:
        yield server


def test_spans_decoded_by_workers_are_stored(pooled: LiveServer) -> None:
    """Requests decoded in two worker processes are all stored, rows as sent."""
    for n in range(5):
        assert post(pooled, request_body(n * SPANS_PER_REQUEST)).status_code == 200
    assert pooled.store.counts().spans == 5 * SPANS_PER_REQUEST
    [first] = [
        s
        for s in pooled.store.get_trace("5b8efff798038103d269b633813fc60c")
        if s.span_id == "0000000000000001"
    ]
    assert first.attributes["http.route"] == "/pay"
    assert first.user_id == "u"
    assert len(worker_pids()) == 2


def test_the_server_serves_once_every_worker_is_up(pooled: LiveServer) -> None:
    """By the time the server accepts requests both workers have started and answered,
    so a first export does not wait for a worker to import (an SDK with a short
    timeout would give it up)."""
    answered = pooled.app.state.span_decoding.worker_pids()
    assert len(answered) == 2
    assert set(answered) == worker_pids()


def test_malformed_payload_gets_the_in_process_answer(pooled: LiveServer) -> None:
    """A body no decoder accepts is a 400 whose message is the in-process decoder's."""
    body = request_body(0)[:-7]
    with pytest.raises(ThreadlineError) as refused:
        decode(body, PayloadFormat.PROTOBUF)
    answer = post(pooled, body)
    assert answer.status_code == 400
    assert status_pb2.Status.FromString(answer.content).message == refused.value.message
    bad_span = one_span_request(span_id=b"\x00" * 8).SerializeToString()
    answer = post(pooled, bad_span)
    assert answer.status_code == 400
    message = status_pb2.Status.FromString(answer.content).message
    assert message.startswith("resourceSpans[0].scopeSpans[0].spans[0].spanId")
    assert pooled.store.counts().spans == 0


def test_killed_workers_are_replaced_and_nothing_acknowledged_is_lost(
    pooled: LiveServer,
) -> None:
    """Workers killed while idle and mid-request: 503s at most, then every span is stored."""
    assert post(pooled, request_body(0)).status_code == 200
    for pid in worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert post_until_stored(pooled, request_body(1000))[-1] == 200

    # Mid-request: workers are killed again and again while a large body is decoded.
    large = request_body(5000, spans=5000)
    answers: list[list[int]] = []
    sender = threading.Thread(target=lambda: answers.append(post_until_stored(pooled, large)))
    sender.start()
    killing_until = time.monotonic() + KILLING_S
    while time.monotonic() < killing_until:
        for pid in worker_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    sender.join(DEADLINE_S + 5)
    [statuses] = answers
    assert statuses[-1] == 200
    assert 503 in statuses  # the request a worker died under was refused, not acknowledged
    assert set(statuses) <= {200, 503}
    acknowledged = 2 * SPANS_PER_REQUEST + 5000
    assert pooled.store.counts().spans == acknowledged
    assert len(worker_pids()) == 2


def test_workers_exit_with_the_server(tmp_path: Path) -> None:
    """Shutting the server down stops its worker processes."""
    with live_server(tmp_path / "stop.duckdb", lifespan=True, workers=2) as server:
        assert post(server, request_body(0)).status_code == 200
        pids = worker_pids()
        assert len(pids) == 2
    deadline = time.monotonic() + 10
    while worker_pids() & pids and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker_pids() & pids


def test_workers_of_a_killed_server_exit(tmp_path: Path) -> None:
    """`threadline serve --workers 2` killed outright leaves no worker process behind."""
    with threadline_serve(tmp_path, "--workers", "2") as server:
        deadline = time.monotonic() + DEADLINE_S
        while len(worker_pids(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = worker_pids(server.pid)
        assert len(pids) == 2
        os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, pids))


def test_workers_setting_defaults_to_the_cores_and_refuses_negatives() -> None:
    """0 (the default) means one per core; env and arguments set it; negatives are refused."""
    assert worker_count(ServerSettings()) == (os.cpu_count() or 1)
    assert load(ServerSettings, environ={"THREADLINE_WORKERS": "3"}).workers == 3
    with pytest.raises(ConfigError, match="workers"):
        worker_count(ServerSettings(workers=-1))


def test_one_worker_decodes_one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``workers = 1`` requests are decoded in the server process, one at a time.

    Decoding holds the interpreter lock, so a second decoding thread adds no speed, only
    another contender for the lock, which the store's writer thread takes back after
    each statement of a commit: with a thread pool's worth of requests decoding at once,
    a commit of one request's spans waited 0.4–0.8 s for it (``docs/performance.md``,
    "One decoding thread"). Requests arriving together are decoded in turn, each as sent.
    """
    watched = AtOnce(SpanDecoder.decode)
    # A function, so that it binds to each decoder as the method it replaces did.
    monkeypatch.setattr(SpanDecoder, "decode", lambda *args: watched(*args))
    decoding = InProcessDecoding(ServerSettings(workers=1))

    async def decode_together() -> list[SpanBatch]:
        bodies = [request_body(n * 10, spans=10) for n in range(8)]
        return list(
            await asyncio.gather(*(decoding.decode(b, PayloadFormat.PROTOBUF) for b in bodies))
        )

    batches = asyncio.run(decode_together())
    assert watched.most == 1
    span_ids = [sorted(batch.table.column("span_id").to_pylist()) for batch in batches]
    assert span_ids == [[f"{n + 1:016x}" for n in range(k * 10, k * 10 + 10)] for k in range(8)]
