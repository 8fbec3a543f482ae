"""``support.missing``: a missing service skips the test here and fails it under CI=true."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from support.missing import in_ci, missing, require_executable, require_module, require_port

TESTS: Final = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S: Final = 60.0


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("", False)],
)
def test_ci_is_read_from_the_ci_variable(value: str, expected: bool) -> None:
    """CI=true (any case) or 1 means a CI run; false or empty does not."""
    assert in_ci({"CI": value}) is expected
    assert in_ci({}) is False


def test_missing_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CI the test is skipped, and the reason names what is missing."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="RabbitMQ does not answer"):
        missing("RabbitMQ does not answer")


def test_missing_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true the same call fails the test, still naming what is missing."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"RabbitMQ does not answer.*CI=true"):
        missing("RabbitMQ does not answer")


def test_require_port_passes_when_something_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listening port is no reason to skip or fail, in CI or not."""
    monkeypatch.setenv("CI", "true")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        require_port("test listener", int(listener.getsockname()[1]))


def test_require_port_names_the_service_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port skips with the service's name, its port and how to start it."""
    monkeypatch.delenv("CI", raising=False)
    port = closed_port()
    with pytest.raises(pytest.skip.Exception, match=rf"Redis does not answer on 127.0.0.1:{port}"):
        require_port("Redis", port)


def test_require_module_and_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Present ones are returned; absent ones fail under CI with their name."""
    monkeypatch.setenv("CI", "true")
    assert require_module("json").dumps([]) == "[]"
    assert Path(require_executable(sys.executable)).exists()
    with pytest.raises(pytest.fail.Exception, match="no_such_package_here"):
        require_module("no_such_package_here")
    with pytest.raises(pytest.fail.Exception, match="no-such-program-here"):
        require_executable("no-such-program-here")


_NEEDS_A_CLOSED_PORT: Final = """
from support.missing import require_module, require_port

absent = require_module("no_such_package_here") if {module_level} else None

def test_needs_the_service():
    require_port("the broker", {port})
"""


@pytest.mark.parametrize("module_level", [False, True], ids=["in-test", "at-import"])
def test_a_real_run_fails_under_ci_and_skips_otherwise(module_level: bool, tmp_path: Path) -> None:
    """A pytest run whose service is down exits 0 with a skip, but under CI=true exits 1."""
    (tmp_path / "test_needs.py").write_text(
        _NEEDS_A_CLOSED_PORT.format(port=closed_port(), module_level=module_level)
    )
    outcomes = {}
    for ci in ("", "true"):
        env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", tmp_path],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        outcomes[ci] = (run.returncode, run.stdout)
    skipped_code, skipped_out = outcomes[""]
    failed_code, failed_out = outcomes["true"]
    # 5 is pytest's "no tests collected": the whole module was skipped at import.
    assert skipped_code == (5 if module_level else 0), skipped_out
    assert re.search(r"\b1 skipped in\b", skipped_out), skipped_out
    assert failed_code in (1, 2), failed_out  # 1: a test failed; 2: collection failed
    assert re.search(r"\b1 (failed|error) in\b", failed_out), failed_out
    assert "CI=true" in failed_out


def test_no_test_skips_on_its_own() -> None:
    """Every skip for something missing goes through support.missing, so CI cannot skip it."""
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "missing.py" and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"pytest\.(skip|importorskip)\b|mark\.skip(if)?\b|mark\.xfail\b", line)
    ]
    assert offenders == []
