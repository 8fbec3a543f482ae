"""Journey sampling where journeys start: six real servers, sessions from header or cookie.

With ``default = {probability = 0.5, by = "journey"}`` every trace of a session must be
kept or dropped together, also when the session arrives at the edge service as the
``X-Session-Id`` header or the session cookie (browsers send no baggage). The scenario
drives each server with sessions of 4 requests; this test counts, from what the
collector received, the sessions kept whole, dropped whole, and split.

The same run checks what each server sends on for the ``tracestate`` shapes of the W3C
conformance suite at its strictest level, and that garbage context headers are answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from sdk.collector import SERVER, Collector, running_collector
from sdk.conftest import clean_environ
from threadline.sampling_rules import journey_random, sampled_by_ratio

from .conftest import SCENARIO_TIMEOUT_S
from .services import SCENARIOS

SERVERS: Final = ("wsgi", "asgi", "flask", "fastapi", "django", "aiohttp")
SESSIONS: Final = 24
REQUESTS_PER_SESSION: Final = 4
TRACE_ID: Final = "12345678901234567890123456789012"
BY_JOURNEY: Final = {"default": {"probability": 0.5, "by": "journey"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Collector]:
    """One scenario run for the whole module (it starts six servers and sends ~600 requests)."""
    directory = tmp_path_factory.mktemp("journey-sampling")
    rules = directory / "rules.json"
    rules.write_text(json.dumps(BY_JOURNEY))
    with running_collector() as collector:
        output = _run_scenario(collector, directory, rules)
        collector.wait_for(lambda got: any(s.kind == SERVER for s in got))
        return output, collector


def _run_scenario(collector: Collector, cwd: Path, rules: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(SCENARIOS / "journey_sampling.py"), str(SESSIONS)],
        env=clean_environ(
            {
                "THREADLINE_ENDPOINT": collector.endpoint,
                "THREADLINE_EXPORT_DELAY_MS": "50",
                "THREADLINE_SAMPLING_RULES_FILE": str(rules),
                "THREADLINE_SAMPLING_POLL_S": "0",
            }
        ),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    output: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return output


def _journey_counts(output: dict[str, Any], collector: Collector, server: str) -> dict[str, int]:
    """Per session of ``server``: how many of its traces reached the collector."""
    stored = {s.trace_id: s for s in collector.spans if s.kind == SERVER}
    counts: dict[str, int] = {}
    for answer in output["journeys"][server]:
        assert answer["status"] == 200, answer
        assert answer["journey"] == {"session.id": answer["session"]}, answer
        span = stored.get(answer["trace_id"])
        if span is not None:
            assert span.attributes.get("session.id") == answer["session"], span
        counts[answer["session"]] = counts.get(answer["session"], 0) + (span is not None)
    return counts


@pytest.mark.parametrize("server", SERVERS)
def test_every_session_is_kept_or_dropped_whole(
    server: str, run: tuple[dict[str, Any], Collector]
) -> None:
    """Each session's 4 traces all reach the collector or none does, roughly half the sessions
    are kept, and exactly those whose ``session.id`` hash falls under the probability."""
    output, collector = run
    counts = _journey_counts(output, collector, server)
    assert len(counts) == SESSIONS
    whole = sorted(s for s, n in counts.items() if n == REQUESTS_PER_SESSION)
    split = {s: n for s, n in counts.items() if 0 < n < REQUESTS_PER_SESSION}
    summary = f"{server}: {len(whole)} of {SESSIONS} sessions kept whole, split: {split}"
    print(summary)  # the figure, with ``pytest -s``
    assert not split, summary
    assert SESSIONS // 4 <= len(whole) <= SESSIONS * 3 // 4, summary
    expected = sorted(s for s in counts if sampled_by_ratio(journey_random(s), 0.5))
    assert whole == expected, summary
    # Both ways in were exercised on both sides of the decision.
    by_cookie = {a["session"] for a in output["journeys"][server] if a["by_cookie"]}
    assert by_cookie & set(whole), summary
    assert by_cookie - set(whole), summary


# (probe, tracestate sent on, or None when it must be discarded): what the suite expects.
PROBES: Final = [
    ("repeated", "foo=1,bar=2,rojo=1,congo=2"),
    ("ows", "foo=1,bar=2,baz=3"),
    ("empty-header", "foo=1"),
    ("32-members", ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33))),
    ("33-members", None),
    ("key-256", f"foo=1,{'z' * 256}=1"),
    ("key-257", None),
    ("at-first", None),
    ("at-last", "foo@=1,bar=2"),
    ("bad-value", None),
    ("empty-value", None),
]


@pytest.mark.parametrize("server", SERVERS)
def test_tracestate_shapes_of_the_conformance_suite(
    server: str, run: tuple[dict[str, Any], Collector]
) -> None:
    """Through a real server, a valid tracestate is sent on whole and an invalid one not at
    all, while the trace continues from traceparent."""
    output, _ = run
    for probe, expected in PROBES:
        answer = output["probes"][server][probe]
        assert answer["status"] == 200, (probe, answer)
        outgoing = answer["outgoing"]
        assert outgoing["traceparent"].split("-")[1] == TRACE_ID, (probe, outgoing)
        assert outgoing.get("tracestate") == expected, (probe, outgoing)


@pytest.mark.parametrize("server", SERVERS)
def test_garbage_context_headers_are_answered(
    server: str, run: tuple[dict[str, Any], Collector]
) -> None:
    """An invalid traceparent, tracestate and baggage at once: the request is served in a new
    trace, and the session header still starts the journey."""
    answer = run[0]["probes"][server]["garbage"]
    assert answer["status"] == 200, answer
    assert answer["trace_id"] != TRACE_ID
    assert answer["journey"] == {"session.id": f"{server}-garbage"}
    assert "tracestate" not in answer["outgoing"]
