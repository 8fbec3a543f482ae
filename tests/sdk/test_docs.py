"""docs/instrumenting.md: its settings table, its complete example and its server-spans example
stay true."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Final

import pytest

from threadline import settings
from threadline.demo.processes import free_port
from threadline.sdk.pseudonym import Pseudonymizer

from .collector import SERVER, Collector
from .conftest import clean_environ

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "instrumenting.md"
START_TIMEOUT_S: Final = 30.0


def _complete_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A complete service", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the complete example is missing"
    return match.group(1)


def _server_spans_example() -> str:
    section = DOC.read_text(encoding="utf-8").split("### Flask and Django server spans", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the server spans example is missing"
    return match.group(1)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the documented example did not start listening")


def test_settings_table_matches_the_declarations() -> None:
    """The SDK settings table in the guide is the one generated from SdkSettings."""
    assert settings.markdown_table(settings.SdkSettings) in DOC.read_text(encoding="utf-8")


def test_complete_example_runs_and_exports_the_journey(
    collector: Collector, tmp_path: Path
) -> None:
    """The guide's complete service runs as written and its request span carries the journey."""
    script = tmp_path / "shop.py"
    script.write_text(_complete_example(), encoding="utf-8")
    port = free_port()
    env = clean_environ(
        {
            "PORT": str(port),
            "THREADLINE_ENDPOINT": collector.endpoint,
            "THREADLINE_USER_ID_KEY": "doc-key",
        }
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/checkout",
            headers={"X-Session-Id": "s-42", "X-User-Id": "alice"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    (span,) = [s for s in collector.spans if s.kind == SERVER]
    assert span.service == "shop"
    assert span.attributes["session.id"] == "s-42"
    assert span.attributes["user.id"] == Pseudonymizer("doc-key")("alice")


BOUNDARIES: Final = DOC.parent / "boundaries.md"


def _first_python_block(doc: Path, heading: str) -> str:
    section = doc.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert match, f"no python example under {heading!r} in {doc.name}"
    return match.group(1)


def test_strict_trace_context_example_runs() -> None:
    """The tracestate example in docs/boundaries.md holds as written."""
    example = _first_python_block(BOUNDARIES, "W3C Trace Context, strictly")
    exec(compile(example, "boundaries.md", "exec"), {})


def test_span_processor_example_runs_on_either_pipeline(
    collector: Collector, span_pipeline: str
) -> None:
    """The span-processor example in "The span pipeline" prints the span it added, with
    either pipeline installed."""
    example = _first_python_block(DOC, "The span pipeline")
    completed = subprocess.run(
        [sys.executable, "-c", example],
        env=clean_environ({"THREADLINE_ENDPOINT": collector.endpoint}),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "charge {'order.items': 3}"
    assert [span.name for span in collector.spans if span.name == "charge"] == ["charge"]


@pytest.mark.parametrize("server_instrumentation", ["threadline", "otel"])
def test_server_spans_example_prints_what_it_says(
    collector: Collector, tmp_path: Path, server_instrumentation: str
) -> None:
    """The Flask server-span example prints the line its comment shows, with either setting."""
    code = _server_spans_example()
    expected = re.search(r"^# (GET .*)$", code, re.MULTILINE)
    assert expected, "the example's expected output comment is missing"
    script = tmp_path / "server_spans.py"
    script.write_text(code, encoding="utf-8")
    env = clean_environ(
        {
            "THREADLINE_ENDPOINT": collector.endpoint,
            "THREADLINE_SERVER_INSTRUMENTATION": server_instrumentation,
        }
    )
    completed = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == expected.group(1)
