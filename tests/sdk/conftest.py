"""Fixtures for SDK tests: a loopback OTLP collector and scenario subprocesses.

OpenTelemetry lets a process set its global TracerProvider once, so every test that
needs ``threadline.configure()`` runs a script from ``scenarios/`` in a fresh Python
process that exports to the collector over real OTLP/HTTP. Tests that need no global
provider run in-process with a local ``TracerProvider``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from support.processes import ready_script
from threadline.sdk import guard

from .collector import Collector, running_collector

SCENARIOS: Final = Path(__file__).parent / "scenarios"
SCENARIO_TIMEOUT_S: Final = 60.0

# The span pipelines configure() can install (the `pipeline` setting): every test that
# runs configure() in a subprocess runs once with each.
PIPELINES: Final = ("fast", "otel")
# What marks such a test: one of these fixtures, or a module that starts processes.
_SUBPROCESS_FIXTURES: Final = frozenset(
    {"collector", "run_scenario", "run_boundary_scenario", "outcomes"}
)
_SUBPROCESS_HELPERS: Final = ("clean_environ", "running_service", "running_script")
_pipeline = PIPELINES[0]


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without Threadline/OpenTelemetry settings, plus ``extra``
    (and ``THREADLINE_PIPELINE`` naming the pipeline the current test runs under)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["THREADLINE_PIPELINE"] = _pipeline
    env.update(extra or {})
    return env


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests whose services run configure() in a subprocess run under both pipelines."""
    if "span_pipeline" not in metafunc.fixturenames:
        return
    uses_processes = bool(_SUBPROCESS_FIXTURES & set(metafunc.fixturenames)) or any(
        hasattr(metafunc.module, name) for name in _SUBPROCESS_HELPERS
    )
    if uses_processes:
        metafunc.parametrize("span_pipeline", PIPELINES, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def span_pipeline(request: pytest.FixtureRequest) -> Iterator[str]:
    """The span pipeline subprocesses started by this test install (``fast`` unless
    parametrized by :func:`pytest_generate_tests`)."""
    global _pipeline
    _pipeline = getattr(request, "param", PIPELINES[0])
    yield _pipeline
    _pipeline = PIPELINES[0]


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    output: Any  # the JSON object the scenario printed last
    stderr: str


class ScenarioRunner(Protocol):
    def __call__(
        self, name: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ScenarioResult: ...


@pytest.fixture(autouse=True)
def _raise_internal_errors() -> Iterator[None]:
    """In-process tests see a failing Threadline hook as an exception, not a log line."""
    guard.raise_internal_errors(True)
    yield
    guard.raise_internal_errors(False)


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as running:
        yield running


@pytest.fixture
def run_scenario(collector: Collector, tmp_path: Path) -> ScenarioRunner:
    """Run ``scenarios/<name>.py`` to completion; returns the JSON it printed last and its
    stderr."""

    def run(
        name: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ScenarioResult:
        environ = clean_environ({"THREADLINE_ENDPOINT": collector.endpoint, **(env or {})})
        completed = subprocess.run(
            [sys.executable, str(SCENARIOS / f"{name}.py"), *args],
            env=environ,
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        lines = completed.stdout.strip().splitlines()
        return ScenarioResult(json.loads(lines[-1]) if lines else None, completed.stderr)

    return run


@contextmanager
def running_service(
    script: str, *args: str, env: Mapping[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start ``scenarios/<script>.py``; yields the process and the JSON line it prints when ready.

    The process is sent SIGTERM (then killed if it lingers) when the block ends.
    """
    with ready_script(
        SCENARIOS / f"{script}.py", *args, env=clean_environ(env), log=log
    ) as started:
        yield started
