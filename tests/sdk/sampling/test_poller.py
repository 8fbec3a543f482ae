"""The rule poller against a real Threadline server: ETags, changes, and the server going away."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Final

import pytest

from support.threaded_http import serving_in_thread
from threadline.sampling_rules import parse
from threadline.sdk.sampling.poller import JITTER, PollOutcome, RulePoller
from threadline.sdk.sampling.rule_sampler import RuleSampler

from .live_server import RulesServer, rules_server

WAIT_TIMEOUT_S: Final = 10.0
WAIT_STEP_S: Final = 0.02
# Long enough for the child's own first poll, short enough to keep the test quick.
CHILD_LIFETIME_S: Final = 3.0
HALF = {"default": {"probability": 0.5}}
NONE = {"rules": [{"route": "/health", "probability": 0.0}], "default": {"probability": 0.0}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RulesServer]:
    with rules_server(tmp_path / "spans.duckdb") as running:
        yield running


def _poller(url: str, sampler: RuleSampler, interval_s: float = 60.0) -> RulePoller:
    return RulePoller(url, sampler.update, interval_s, rng=random.Random(3), timeout_s=5.0)


def test_a_poll_applies_the_servers_rules_then_304s_until_they_change(
    server: RulesServer,
) -> None:
    """The first poll installs the rules; later polls are 304 until a PUT, then apply it."""
    server.put_rules(HALF)
    sampler = RuleSampler("web")
    poller = _poller(server.sampling_url, sampler)
    assert poller.poll_once() is PollOutcome.UPDATED
    assert sampler.rules.default.probability == 0.5
    assert poller.poll_once() is PollOutcome.UNCHANGED
    etag = server.put_rules(NONE)
    assert poller.poll_once() is PollOutcome.UPDATED
    assert poller.etag == etag
    assert sampler.rules == parse(NONE).for_service("web")


def test_the_last_known_rules_stay_when_the_server_is_unreachable(tmp_path: Path) -> None:
    """A server that goes away leaves the service sampling by the rules it last had."""
    sampler = RuleSampler("web")
    with rules_server(tmp_path / "spans.duckdb") as running:
        running.put_rules(HALF)
        poller = _poller(running.sampling_url, sampler)
        assert poller.poll_once() is PollOutcome.UPDATED
    assert poller.poll_once() is PollOutcome.FAILED
    assert sampler.rules.default.probability == 0.5


class _Fixed(BaseHTTPRequestHandler):
    """Answers every GET with the server's ``status`` and ``body``."""

    def do_GET(self) -> None:
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def fixed_server() -> Iterator[ThreadingHTTPServer]:
    with serving_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), _Fixed)) as httpd:
        yield httpd


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"default": {"probability": 7}}'),  # invalid rules
        (200, b"<html>not json</html>"),
        (404, b'{"error": "no such path"}'),  # a plain OTLP collector
        (500, b"{}"),
    ],
)
def test_a_bad_answer_never_replaces_the_rules_in_force(
    fixed_server: ThreadingHTTPServer, status: int, body: bytes
) -> None:
    """Invalid documents and error answers are ignored; the rules in force stay."""
    fixed_server.answer = (status, body)  # type: ignore[attr-defined]
    sampler = RuleSampler("web", parse(HALF))
    port = fixed_server.server_address[1]
    poller = _poller(f"http://127.0.0.1:{port}/api/sampling", sampler)
    assert poller.poll_once() is PollOutcome.FAILED
    assert sampler.rules.default.probability == 0.5


def test_the_background_thread_picks_up_a_change_without_restart(server: RulesServer) -> None:
    """Started once, the poller keeps the sampler current as the rules change on the server."""
    sampler = RuleSampler("web")
    poller = _poller(server.sampling_url, sampler, interval_s=0.05)
    poller.start()
    try:
        server.put_rules(NONE)
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        for _ in range(int(WAIT_TIMEOUT_S / WAIT_STEP_S)):
            if sampler.rules.default.probability == 0.0 or time.monotonic() > deadline:
                break
            time.sleep(WAIT_STEP_S)
        assert sampler.rules.default.probability == 0.0
    finally:
        poller.stop()


def test_polls_are_spread_by_jitter() -> None:
    """Delays vary within ±20% of the interval, so a fleet does not poll in step."""
    poller = RulePoller("http://127.0.0.1:9/", lambda _: None, 30.0, rng=random.Random(1))
    delays = [poller.next_delay_s() for _ in range(200)]
    assert all(30.0 * (1 - JITTER) <= d <= 30.0 * (1 + JITTER) for d in delays)
    assert max(delays) - min(delays) > 30.0 * JITTER


class _CountingHandler(BaseHTTPRequestHandler):
    """Answers every GET with 404 (no rules served) and counts it."""

    polls: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        type(self).polls.append(time.monotonic())
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_forked_child_polls_with_its_own_thread() -> None:
    """A process forked while its poller runs (a gunicorn --preload worker) polls too,
    instead of keeping the rules of the moment it was forked."""
    _CountingHandler.polls = []
    counting = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    with serving_in_thread(counting, name="counting-rules"):
        url = f"http://127.0.0.1:{counting.server_address[1]}/api/sampling"
        poller = _poller(url, RuleSampler("web"))  # a minute between the parent's polls
        poller.start()
        try:
            _wait_for(lambda: len(_CountingHandler.polls) == 1)
            child = os.fork()
            if child == 0:
                try:
                    time.sleep(CHILD_LIFETIME_S)  # its poller polls meanwhile, or not
                finally:
                    os._exit(0)
            try:
                _wait_for(lambda: len(_CountingHandler.polls) >= 2)
            finally:
                os.waitpid(child, 0)
        finally:
            poller.stop()
    assert len(_CountingHandler.polls) == 2


def _wait_for(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    for _ in range(int(WAIT_TIMEOUT_S / WAIT_STEP_S)):
        if done() or time.monotonic() > deadline:
            break
        time.sleep(WAIT_STEP_S)
    assert done()
