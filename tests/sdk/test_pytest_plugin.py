"""The pytest plugin sees what is exported, and sends nothing unless the run asks for it.

A user's test run (a pytest subprocess) imports the documented service example, which
calls ``threadline.configure()`` at import. Its endpoint is a loopback server that
records every request it gets: without ``--threadline-export`` it must get none (no
spans, no sampling-rule polls), while ``threadline_spans`` still shows the journey keys
the exporter would have written.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

import pytest

from support.threaded_http import serving_in_thread

from .conftest import clean_environ

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "instrumenting.md"
RUN_TIMEOUT_S: Final = 90.0

USERS_TEST: Final = """
from opentelemetry import trace

import threadline
from threadline.testing import assert_one_trace
from shop import app


def test_checkout_keeps_the_journey(threadline_spans):
    answer = app.test_client().get("/checkout", headers={"X-Session-Id": "s-42"})
    assert answer.status_code == 200
    assert_one_trace(threadline_spans.spans, services=["shop"], journey={"session.id": "s-42"})


def test_user_id_is_seen_pseudonymised_as_exported(threadline_spans):
    with threadline.journey(session_id="s-7", user_id="alice"):
        with trace.get_tracer("shop").start_as_current_span("charge"):
            pass
    (span,) = threadline_spans.named("charge")
    assert span.attributes["session.id"] == "s-7"
    assert span.attributes["user.id"].startswith("u_")
"""


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers every request with 200 and an empty body, and records its method and path."""

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        server: _Recorder = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    with serving_in_thread(_Recorder(), name="endpoint-recorder") as server:
        yield server


def _documented_service() -> str:
    section = DOC.read_text(encoding="utf-8").split("## A complete service", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the complete example is missing"
    return match.group(1)


def _run_users_tests(
    tmp_path: Path, endpoint: str, *options: str, conftest: str = ""
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "shop.py").write_text(_documented_service(), encoding="utf-8")
    (tmp_path / "test_shop.py").write_text(USERS_TEST, encoding="utf-8")
    if conftest:
        (tmp_path / "conftest.py").write_text(conftest, encoding="utf-8")
    env = clean_environ(
        {
            "THREADLINE_ENDPOINT": endpoint,
            "THREADLINE_EXPORT_DELAY_MS": "20",
            "THREADLINE_SAMPLING_POLL_S": "0.05",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "2 passed" in completed.stdout, completed.stdout
    return completed


@pytest.mark.parametrize(
    "conftest",
    ["", "import shop  # the service is configured before any test module is imported\n"],
    ids=["configured-by-the-test-module", "configured-by-a-conftest"],
)
def test_journey_keys_are_seen_and_nothing_is_sent(
    recorder: _Recorder, tmp_path: Path, conftest: str
) -> None:
    """configure() under the plugin: the fixture sees session.id and the pseudonymised user.id,
    and the endpoint receives no request at all."""
    _run_users_tests(tmp_path, recorder.endpoint, conftest=conftest)
    assert recorder.requests == []


def test_a_run_that_asks_to_export_does(recorder: _Recorder, tmp_path: Path) -> None:
    """With ``--threadline-export`` the spans reach the endpoint, and the fixture still sees the
    journey keys."""
    _run_users_tests(tmp_path, recorder.endpoint, "--threadline-export")
    assert "POST /v1/traces" in recorder.requests, recorder.requests


def test_the_ini_option_asks_to_export(recorder: _Recorder, tmp_path: Path) -> None:
    """``threadline_export = true`` in the ini options is the same opt-in."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nthreadline_export = true\n")
    _run_users_tests(tmp_path, recorder.endpoint)
    assert "POST /v1/traces" in recorder.requests, recorder.requests
