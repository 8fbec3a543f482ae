"""Fixtures for boundary tests: real brokers on 127.0.0.1 (a missing one skips the test
here and fails it in CI, see ``support.missing``)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from sdk.collector import Collector
from sdk.conftest import clean_environ
from support.missing import require_port

from .services import SCENARIOS

BROKERS: Final = {
    "rabbitmq": 5672,
    "redis": 6379,
    "nats": 4222,
    "mqtt": 1883,
}


def require_broker(name: str) -> None:
    """The broker must answer on its port (skipped if not, failed in CI)."""
    require_port(name, BROKERS[name])


@pytest.fixture
def unique_name() -> str:
    """A queue/stream/subject name no other test run uses."""
    return f"threadline-test-{uuid.uuid4().hex[:12]}"


SCENARIO_TIMEOUT_S: Final = 90.0


@pytest.fixture
def run_boundary_scenario(collector: Collector, tmp_path: Path) -> Callable[..., Any]:
    """Run ``scenarios/<name>.py`` exporting to the collector; returns the JSON it printed last."""

    def run(name: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
        environ = clean_environ(
            {
                "THREADLINE_ENDPOINT": collector.endpoint,
                "THREADLINE_EXPORT_DELAY_MS": "50",
                **(env or {}),
            }
        )
        completed = subprocess.run(
            [sys.executable, str(SCENARIOS / f"{name}.py"), *args],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout.strip().splitlines()[-1])

    return run
