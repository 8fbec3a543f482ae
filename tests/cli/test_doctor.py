"""`threadline doctor` run as a subprocess against a real loopback OTLP receiver."""

from __future__ import annotations

import gzip
import importlib.metadata
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

from support.processes import threadline_serve
from support.threaded_http import serving_in_thread
from threadline.cli import doctor
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


def _doctor(
    env: dict[str, str], cwd: Path, *, user_id_key: bool = True
) -> tuple[int, list[dict[str, Any]]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    if user_id_key:
        environ["THREADLINE_USER_ID_KEY"] = "shared-secret"
    environ.update(env)
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
    return [f for f in findings if f["severity"] == "problem"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real `threadline serve` process, as the README's quick start runs it."""
    with threadline_serve(tmp_path_factory.mktemp("doctor-serve")) as server:
        yield server.url


def test_laptop_with_threadline_serve_passes(served: str, tmp_path: Path) -> None:
    """Zero configuration against a running server exits 0; the missing key is a warning."""
    status, findings = _doctor({"THREADLINE_ENDPOINT": served}, tmp_path, user_id_key=False)
    assert status == 0, _problems(findings)
    endpoint = next(f for f in findings if f["section"] == "Endpoint")
    assert "accepted a test span" in endpoint["detail"]
    key = next(f for f in findings if f["subject"] == "user_id_key" and f["advice"])
    assert key["severity"] == "warning"
    assert "THREADLINE_USER_ID_KEY" in key["advice"]


def test_missing_user_id_key_fails_in_production(served: str, tmp_path: Path) -> None:
    """With environment=production the public default key is a problem: exit 1."""
    env = {"THREADLINE_ENDPOINT": served, "THREADLINE_ENVIRONMENT": "production"}
    status, findings = _doctor(env, tmp_path, user_id_key=False)
    assert status == 1
    (problem,) = _problems(findings)
    assert problem["subject"] == "user_id_key"
    assert "'production'" in problem["detail"]


def test_the_report_marks_warnings_apart_from_problems(served: str, tmp_path: Path) -> None:
    """The text report marks a warning with ! and ends saying no problem was found."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "threadline", "doctor"],
        env={**environ, "THREADLINE_ENDPOINT": served},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout
    assert "  ! user_id_key: empty" in completed.stdout
    assert completed.stdout.rstrip().endswith("No problems found, 1 warning(s).")


def test_a_library_pulled_in_by_another_is_information() -> None:
    """starlette without its instrumentation is information when fastapi requires it."""
    requirers = doctor._requirers()
    assert "fastapi" in requirers["starlette"]  # what this environment really has
    findings = doctor.library_findings(
        libraries=[("starlette", "starlette", "no-such-instrumentation", "starlette", "web")]
    )
    (finding,) = findings
    assert finding.severity == "info"
    assert "dependency of fastapi" in finding.detail
    assert 'pip install "threadline[starlette]"' in finding.detail


def test_a_library_the_service_installed_is_a_warning() -> None:
    """celery, required by nothing installed, without instrumentation is a warning."""
    requirers = doctor._requirers()
    assert "celery" not in requirers
    # kombu asks for redis only with its "redis" extra: that does not make redis a dependency.
    kombu = importlib.metadata.requires("kombu") or []
    assert any(r.startswith("redis") and "extra" in r for r in kombu)
    assert "redis" not in requirers
    findings = doctor.library_findings(
        libraries=[("celery", "celery", "no-such-instrumentation", "celery", "task queue")]
    )
    (finding,) = findings
    assert finding.severity == "warning"
    assert finding.advice.startswith('pip install "threadline[celery]"')


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
