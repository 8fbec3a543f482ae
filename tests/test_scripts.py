"""The test command and the services it starts: a service that cannot be started stops
the run with a message naming it, instead of the run going on without it.

``scripts/test`` itself installs packages, so it runs here from a copy whose
``python3``, ``ruff``, ``mypy``, ``lint-imports`` and ``apt-get`` are stand-ins that
only log how they were called. ``scripts/services.sh`` runs as it is where the services
answer; for the case where they do not, it is sourced with its port probe answering
"nothing there" and with start commands that fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from support.missing import require_port

ROOT: Final = Path(__file__).resolve().parents[1]
SERVICES: Final = ROOT / "scripts" / "services.sh"
RUN_TIMEOUT_S: Final = 60.0
# Commands scripts/test and scripts/services.sh call that must not run for real here.
LOGGED: Final = ("python3", "ruff", "mypy", "lint-imports", "apt-get")
# Every command services.sh would start or install a service with (apt-get included,
# so nothing is ever installed by this test).
FAILING_STARTS: Final = (
    "rabbitmq-server",
    "redis-server",
    "nats-server",
    "start-stop-daemon",
    "mosquitto",
    "apt-get",
)


def stand_ins(directory: Path, names: tuple[str, ...], *, status: int, log: Path) -> Path:
    """A directory of scripts named ``names`` that log their arguments and exit ``status``."""
    directory.mkdir()
    for name in names:
        script = directory / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {status}\n')
        script.chmod(0o755)
    return directory


Run = subprocess.CompletedProcess[str]


def run_test_command(tmp_path: Path, services_status: int) -> tuple[Run, str]:
    """scripts/test from a copy whose services.sh exits ``services_status``."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "test", root / "scripts" / "test")
    (root / "scripts" / "services.sh").write_text(
        f'echo "services: could not start: Redis (127.0.0.1:6379)" >&2\nexit {services_status}\n'
    )
    log = tmp_path / "calls.log"
    log.touch()
    bin_dir = stand_ins(tmp_path / "bin", LOGGED, status=0, log=log)
    run = subprocess.run(
        ["bash", str(root / "scripts" / "test"), "-x", "tests/some_test.py"],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    return run, log.read_text()


def test_the_test_command_stops_when_a_service_cannot_be_started(tmp_path: Path) -> None:
    """services.sh failing makes scripts/test exit 1 with a message, before any check runs."""
    run, calls = run_test_command(tmp_path, services_status=1)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "stopping: a service the tests need could not be started" in run.stderr
    assert "Redis (127.0.0.1:6379)" in run.stderr
    assert "python3 -m pip install" in calls  # it got as far as installing
    assert "pytest" not in calls
    assert "ruff" not in calls


def test_the_test_command_runs_every_check_when_services_start(tmp_path: Path) -> None:
    """With every service up, scripts/test runs the checks and pytest with its arguments."""
    run, calls = run_test_command(tmp_path, services_status=0)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ruff check src tests bench" in calls
    assert "mypy" in calls
    assert "lint-imports" in calls
    assert "python3 -m pytest -n 2 --dist loadfile -x tests/some_test.py" in calls


def test_services_script_names_every_service_it_could_not_start(tmp_path: Path) -> None:
    """Where nothing answers and every start command fails, services.sh fails at once (no
    waiting for ports) and names each service with its port."""
    log = tmp_path / "calls.log"
    bin_dir = stand_ins(tmp_path / "bin", FAILING_STARTS, status=1, log=log)
    nothing_answers = "port_open() { return 1; }"
    run = subprocess.run(
        ["bash", "-c", f'source "$1" && {nothing_answers} && start_all', "bash", str(SERVICES)],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("services: could not start:")
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379), ("NATS", 4222), ("Mosquitto", 1883)):
        assert f"{name} (127.0.0.1:{port})" in last
        assert f"starting {name} failed" in run.stderr


def test_services_script_succeeds_where_the_services_run() -> None:
    """Where every service already answers, services.sh starts nothing and exits 0."""
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379), ("NATS", 4222), ("Mosquitto", 1883)):
        require_port(name, port)
    run = subprocess.run(
        ["bash", str(SERVICES)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "starting" not in run.stdout
