"""Spans dated in the future, against a real `threadline serve`: moved back to their
receive time and counted, so they can neither outlive retention nor push others out."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.processes import refused_serve, threadline_serve

SKEW_NS: Final = 5 * 60 * 10**9  # THREADLINE_MAX_CLOCK_SKEW below
YEAR_2200_NS: Final = 7_258_118_400 * 10**9
NEAR_INT64_MAX_NS: Final = 2**63 - 10**9
DURATION_NS: Final = 3_000_000


def span(trace: int, start_ns: int, end_ns: int | None = None) -> dict[str, Any]:
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{trace:016x}",
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + DURATION_NS if end_ns is None else end_ns),
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A server that allows five minutes of clock skew."""
    env = {**os.environ, "THREADLINE_MAX_CLOCK_SKEW": "5m"}
    with threadline_serve(tmp_path, env=env) as server:
        yield server.url


def test_future_starts_are_moved_to_the_receive_time_and_counted(served: str) -> None:
    """Starts in 2200 and near 2^63 ns become the receive time; a small skew is kept.

    Retention and the size cap go by start time: a span kept in 2200 would outlive
    every retention and be the last the size cap deletes.
    """
    now = time.time_ns()
    in_skew = now + 60 * 10**9
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            span(1, YEAR_2200_NS),
                            span(2, NEAR_INT64_MAX_NS, 2**63 - 1),
                            span(3, in_skew),
                            span(4, now - 10**9),
                        ]
                    }
                ]
            }
        ]
    }
    with httpx.Client(timeout=30) as client:
        before = time.time_ns()
        assert client.post(f"{served}/v1/traces", json=document).status_code == 200
        after = time.time_ns()
        starts = {}
        for trace in (1, 2, 3, 4):
            answer = client.get(f"{served}/api/traces/{trace:032x}")
            assert answer.status_code == 200
            starts[trace] = answer.json()["spans"][0]
        ready = client.get(f"{served}/readyz").json()
    for trace, original in ((1, YEAR_2200_NS), (2, NEAR_INT64_MAX_NS)):
        moved = starts[trace]
        assert before <= moved["start_ns"] <= after
        assert moved["attributes"]["threadline.start_clamped_from_ns"] == str(original)
    assert starts[1]["duration_ms"] == DURATION_NS / 1e6
    assert starts[3]["start_ns"] == in_skew  # within max_clock_skew: as sent
    assert "threadline.start_clamped_from_ns" not in starts[3]["attributes"]
    assert ready["future_starts_clamped"] == 2


def test_a_bad_skew_stops_the_server_naming_the_setting(tmp_path: Path) -> None:
    """max_clock_skew that is not a duration is an error naming it, before serving."""
    env = {**os.environ, "THREADLINE_MAX_CLOCK_SKEW": "soon"}
    result = refused_serve(tmp_path, "--db", "x.duckdb", env=env)
    assert result.returncode != 0
    assert "max_clock_skew" in result.stderr
