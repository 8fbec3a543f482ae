"""`threadline doctor` run as a subprocess against a real loopback OTLP receiver."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.threaded_http import serving_in_thread
from threadline.demo.processes import free_port


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.requests.append(  # type: ignore[attr-defined]
            (self.path, ExportTraceServiceRequest.FromString(body))
        )
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    with serving_in_thread(server):
        yield server


def _doctor(env: dict[str, str], cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    environ.update({"THREADLINE_USER_ID_KEY": "shared-secret", **env})
    completed = subprocess.run(
        [sys.executable, "-m", "threadline", "doctor", "--json"],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout)


def _problems(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["advice"]]


def test_healthy_endpoint_accepts_the_test_span(
    receiver: ThreadingHTTPServer, tmp_path: Path
) -> None:
    """With a reachable endpoint, doctor sends one real OTLP span and reports no problem."""
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    env = {"THREADLINE_ENDPOINT": endpoint, "THREADLINE_SERVICE_NAME": "checkout"}
    status, findings = _doctor(env, tmp_path)
    assert status == 0, _problems(findings)
    (path, request), *_ = receiver.requests  # type: ignore[attr-defined]
    assert path == "/v1/traces"
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "checkout"
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "threadline.doctor"
    endpoint_line = next(f for f in findings if f["section"] == "Endpoint")
    assert "accepted a test span" in endpoint_line["detail"]


def test_each_setting_says_where_it_came_from(
    receiver: ThreadingHTTPServer, tmp_path: Path
) -> None:
    """Values from the environment, threadline.toml and defaults are labelled as such."""
    (tmp_path / "threadline.toml").write_text('[sdk]\nenvironment = "staging"\n')
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    _, findings = _doctor({"THREADLINE_ENDPOINT": endpoint}, tmp_path)
    by_subject = {f["subject"]: f["detail"] for f in findings if f["section"].startswith("Conf")}
    assert by_subject["endpoint"].endswith("(env THREADLINE_ENDPOINT)")
    assert "[sdk] in threadline.toml" in by_subject["environment"]
    assert by_subject["queue_size"].endswith("(default)")


def test_unreachable_endpoint_is_a_problem_with_advice(tmp_path: Path) -> None:
    """Nothing listening at the endpoint exits 1 and says how to fix it."""
    env = {"THREADLINE_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    status, findings = _doctor(env, tmp_path)
    assert status == 1
    (problem,) = _problems(findings)
    assert problem["section"] == "Endpoint"
    assert "THREADLINE_ENDPOINT" in problem["advice"]


def test_rejecting_endpoint_reports_the_status(
    receiver: ThreadingHTTPServer, tmp_path: Path
) -> None:
    """An endpoint answering 404 is reported with what the status usually means."""
    receiver.status = 404  # type: ignore[attr-defined]
    env = {"THREADLINE_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}"}
    status, findings = _doctor(env, tmp_path)
    assert status == 1
    (problem,) = _problems(findings)
    assert "HTTP 404" in problem["detail"]
    assert "/v1/traces" in problem["advice"]


def test_invalid_setting_is_named(tmp_path: Path) -> None:
    """A setting that configure() would refuse is reported by name."""
    status, findings = _doctor({"THREADLINE_QUEUE_SIZE": "0"}, tmp_path)
    assert status == 1
    assert any("queue_size" in f["detail"] for f in _problems(findings))
