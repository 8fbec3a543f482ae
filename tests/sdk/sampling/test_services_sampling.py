"""Three real services in their own processes, polling rules from a real Threadline server.

front → middle → back, each a Flask service configured by ``threadline.configure()``,
exporting to a test collector. Only the front service's rule can sample (the default
for everyone is probability 0), so every kept trace proves that the services
downstream followed the decision made upstream.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from sdk.collector import SERVER, Collector, running_collector
from sdk.conftest import clean_environ
from support.processes import ready_script
from threadline.sampling_rules import journey_random, sampled_by_ratio

from .live_server import RulesServer, rules_server

SCRIPT: Final = Path(__file__).parent / "scenarios" / "chain_service.py"
CHAIN: Final = ("svc-back", "svc-middle", "svc-front")  # started in this order
START_TIMEOUT_S: Final = 30.0
WAIT_TIMEOUT_S: Final = 20.0
WAIT_STEP_S: Final = 0.05

BY_JOURNEY: Final = {
    "rules": [{"service": "svc-front", "probability": 0.5, "by": "journey"}],
    "default": {"probability": 0.0},
}
KEEP_FRONT: Final = {
    "rules": [{"service": "svc-front", "probability": 1.0}],
    "default": {"probability": 0.0},
}


@dataclass(frozen=True, slots=True)
class Fleet:
    collector: Collector
    rules: RulesServer
    urls: dict[str, str]

    def get(self, service: str, path: str, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(f"{self.urls[service]}{path}", headers=headers or {})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    def apply(self, document: object) -> None:
        """PUT rules, then wait (bounded) until every service has applied them."""
        etag = self.rules.put_rules(document)
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        for _ in range(int(WAIT_TIMEOUT_S / WAIT_STEP_S)):
            seen = {s: self.get(s, "/rules")["etag"] for s in CHAIN}
            if set(seen.values()) == {etag} or time.monotonic() > deadline:
                break
            time.sleep(WAIT_STEP_S)
        assert set(seen.values()) == {etag}, f"services did not pick up the rules: {seen}"

    def work(self, baggage: str) -> str:
        """A request into the front service carrying ``baggage``; returns its trace id."""
        return str(self.get("svc-front", "/work", {"baggage": baggage})["trace_id"])

    def flushed_spans_by_trace(self) -> dict[str, set[str]]:
        """Services with a server span in each trace, once every service has exported."""
        for service in CHAIN:
            assert self.get(service, "/flush")["flushed"]
        by_trace: dict[str, set[str]] = {}
        for span in self.collector.spans:
            # Only /work: the /rules and /flush calls are traces of their own.
            if span.kind == SERVER and span.name.endswith("/work"):
                by_trace.setdefault(span.trace_id, set()).add(span.service)
        return by_trace


@contextmanager
def _service(name: str, args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    script = ready_script(
        SCRIPT, name, *args, env=clean_environ(env), log=log, timeout_s=START_TIMEOUT_S
    )
    with script as (_, ready):
        yield f"http://127.0.0.1:{ready['port']}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("sampling-fleet")
    with (
        rules_server(directory / "spans.duckdb") as rules,
        running_collector() as collector,
        ExitStack() as stack,
    ):
        rules.put_rules(BY_JOURNEY)
        env = {
            "THREADLINE_ENDPOINT": collector.endpoint,
            "THREADLINE_SAMPLING_URL": rules.sampling_url,
            "THREADLINE_SAMPLING_POLL_S": "0.1",
            "THREADLINE_EXPORT_DELAY_MS": "50",
        }
        urls: dict[str, str] = {}
        downstream: list[str] = []
        for name in CHAIN:
            urls[name] = stack.enter_context(
                _service(name, downstream, env, directory / f"{name}.log")
            )
            downstream = [urls[name]]
        yield Fleet(collector, rules, urls)


def _sessions(sampled: bool, count: int) -> list[str]:
    """Session ids whose journey hash falls on the given side of probability 0.5."""
    chosen = []
    for n in range(1000):
        session = f"user-session-{n}"
        if sampled_by_ratio(journey_random(session), 0.5) is sampled:
            chosen.append(session)
            if len(chosen) == count:
                break
    return chosen


@pytest.mark.e2e
def test_traces_are_kept_whole_or_not_at_all_and_journeys_together(fleet: Fleet) -> None:
    """Each trace reaches the collector from all three services or from none, and every trace
    of a journey gets the journey's decision; a debug journey is always kept."""
    fleet.apply(BY_JOURNEY)
    kept_sessions, dropped_sessions = _sessions(True, 6), _sessions(False, 6)
    kept = [fleet.work(f"session.id={s}") for s in kept_sessions for _ in range(2)]
    dropped = [fleet.work(f"session.id={s}") for s in dropped_sessions for _ in range(2)]
    debug = fleet.work(f"session.id={dropped_sessions[0]},threadline.debug=1")

    by_trace = fleet.flushed_spans_by_trace()
    everyone = set(CHAIN)
    assert all(services == everyone for services in by_trace.values()), by_trace
    assert {t for t in kept if t in by_trace} == set(kept)
    assert not {t for t in dropped if t in by_trace}
    assert debug in by_trace


@pytest.mark.e2e
def test_a_running_service_picks_up_a_changed_rule(fleet: Fleet) -> None:
    """A journey dropped under the old rules is kept, end to end, once the rule changes."""
    fleet.apply(BY_JOURNEY)
    (session,) = _sessions(False, 1)
    before = fleet.work(f"session.id={session}")
    fleet.apply(KEEP_FRONT)
    after = fleet.work(f"session.id={session}")
    by_trace = fleet.flushed_spans_by_trace()
    assert before not in by_trace
    assert by_trace[after] == set(CHAIN)
