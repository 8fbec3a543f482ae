"""Requests sent twice, as an exporter retrying after a timeout sends them, are stored
once: decoded in parallel by two worker processes, written in the same group commit or
in consecutive ones, each span is kept exactly once and counted once; so is a span
whose start the server moved back from the future (a different start on each send)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.conventions import CLAMPED_FROM
from threadline.server.aggregates import TimeWindow
from threadline.server.ingest.decode import PayloadFormat

from .otlp_payloads import one_span_request, string_value

PROTOBUF: Final = PayloadFormat.PROTOBUF.content_type
TIMEOUT_S: Final = 60.0
REQUESTS: Final = 12
SPANS_PER_REQUEST: Final = 100
# Every other request is sent twice at the same moment.
RESENT: Final = frozenset(range(0, REQUESTS, 2))
START_NS: Final = 1_700_000_000_000_000_000
MINUTE_NS: Final = 60 * 10**9


def trace_id_of(request: int) -> str:
    return f"{request + 1:032x}"


def span_id_of(request: int, n: int) -> str:
    return f"{request * SPANS_PER_REQUEST + n + 1:016x}"


def request_body(request: int) -> bytes:
    """One trace of ``SPANS_PER_REQUEST`` spans whose ids appear in no other request."""
    message = one_span_request()
    scope = message.resource_spans[0].scope_spans[0]
    template = scope.spans[0]
    template.attributes.append(string_value("http.route", "/pay"))
    del scope.spans[:]
    for n in range(SPANS_PER_REQUEST):
        span = scope.spans.add()
        span.CopyFrom(template)
        span.trace_id = bytes.fromhex(trace_id_of(request))
        span.span_id = bytes.fromhex(span_id_of(request, n))
        span.start_time_unix_nano = START_NS + n * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 500_000
    return message.SerializeToString()


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "resent.duckdb", lifespan=True, workers=2) as server:
        yield server


def test_requests_sent_twice_at_once_are_stored_once(pooled: LiveServer) -> None:
    """Each span id sent, once or twice concurrently, is stored exactly once."""
    bodies = [request_body(r) for r in range(REQUESTS)]
    posts = [r for r in range(REQUESTS) for _ in range(2 if r in RESENT else 1)]
    # All posts leave together, so both copies of a request are decoded side by side
    # by the two workers and queue for the writer while the commit before them runs.
    start = threading.Barrier(len(posts))

    def send(request: int) -> int:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            start.wait(TIMEOUT_S)
            answer = client.post(
                pooled.traces_url, content=bodies[request], headers={"content-type": PROTOBUF}
            )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=len(posts)) as senders:
        statuses = list(senders.map(send, posts))
    assert statuses == [200] * len(posts)

    assert pooled.store.counts().spans == REQUESTS * SPANS_PER_REQUEST
    for request in range(REQUESTS):
        stored = Counter(s.span_id for s in pooled.store.get_trace(trace_id_of(request)))
        expected = {span_id_of(request, n): 1 for n in range(SPANS_PER_REQUEST)}
        assert stored == expected, f"request {request}"

    # Counted once too: the rollups agree with a scan of the stored spans.
    window = TimeWindow(START_NS - MINUTE_NS, START_NS + MINUTE_NS)
    [operation] = pooled.store.operation_red(window)
    assert operation.stats.requests == REQUESTS * SPANS_PER_REQUEST
    [scanned] = pooled.store.scan.operation_red(window)
    assert scanned.stats.requests == REQUESTS * SPANS_PER_REQUEST


def test_span_from_a_clock_ahead_sent_again_is_stored_once(tmp_path: Path) -> None:
    """A span starting an hour ahead is moved back to its receive time, which differs on
    each send: the copy sent again (an exporter's retry) is still stored and counted once."""
    now = time.time_ns()
    ahead = one_span_request(
        start_time_unix_nano=now + 3600 * 10**9, end_time_unix_nano=now + 3601 * 10**9
    ).SerializeToString()
    with live_server(tmp_path / "ahead.duckdb") as server:
        for _ in range(2):
            answer = httpx.post(
                server.traces_url, content=ahead, headers={"content-type": PROTOBUF}
            )
            assert answer.status_code == 200
            time.sleep(0.01)  # the second copy is received, so moved back, later
        [span] = server.store.get_trace("5b8efff798038103d269b633813fc60c")
        assert CLAMPED_FROM in span.attributes
        assert server.store.counts().spans == 1
        window = TimeWindow(now - MINUTE_NS, now + MINUTE_NS)
        [operation] = server.store.operation_red(window)
        assert operation.stats.requests == 1
