"""`pip install threadline` is the SDK alone, and it traces with nothing else installed.

A fresh virtual environment stands for a service that already uses OpenTelemetry: it
first gets the oldest OpenTelemetry release Threadline supports, as the service pinned
it, then the project without extras, by pip as a user would run it (pip may take
wheels from the machine's cache). The test checks that pip kept the service's
OpenTelemetry, that none of the server's dependencies came along, and that
``import threadline; threadline.configure(...)`` exports a span to a loopback
collector, with the server's packages absent.

Needs the package registry. Outside CI (no ``CI`` variable) a registry that cannot
be reached skips the test with the reason; in CI it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Final

import pytest

from sdk.collector import running_collector
from support.missing import missing

ROOT: Final = Path(__file__).resolve().parents[2]
OLDEST: Final = ROOT / "constraints" / "otel-oldest.txt"
# What `pip install threadline` must not bring: the server, the demo and its brokers.
SERVER_PACKAGES: Final = ("duckdb", "pyarrow", "fastapi", "uvicorn", "flask", "pika", "litequeue")
# Creating the venv and two pip installs from the registry; generous for a slow mirror.
INSTALL_TIMEOUT_S: Final = 300
REGISTRY_DOWN: Final = (
    "Could not find a version",
    "No matching distribution",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
)

SERVICE: Final = textwrap.dedent(
    """
    import json, sys

    import threadline
    from opentelemetry import trace

    threadline.configure(service_name="sdk-only", endpoint=sys.argv[1])
    with trace.get_tracer("probe").start_as_current_span("sdk-only span"):
        with threadline.journey(session_id="s-1"):
            pass
    threadline.shutdown()
    heavy = sorted(
        name for name in sys.modules
        if name.split(".")[0] in {"duckdb", "pyarrow", "fastapi", "uvicorn", "flask", "pika",
                                   "litequeue", "click", "rich"}
        or name.startswith("threadline.server")
    )
    print(json.dumps({"imported": heavy}))
    """
)


def _clean_env() -> dict[str, str]:
    """This process's environment without Threadline, OpenTelemetry or PYTHONPATH settings:
    the venv sees only what pip installed in it, not this work tree."""
    prefixes = ("THREADLINE_", "OTEL_", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _pins(path: Path, *names: str) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line.split("==")[0] in names]


def _pip(python: Path, *args: str) -> None:
    completed = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if completed.returncode == 0:
        return
    output = completed.stdout + completed.stderr
    if any(sign in output for sign in REGISTRY_DOWN):
        missing(f"the package registry cannot be reached: {output.strip()[-300:]}")
    raise AssertionError(f"pip install {' '.join(args)} failed:\n{output[-3000:]}")


def _project_copy(directory: Path) -> Path:
    """The files pip builds the project from, so the build leaves the work tree alone."""
    copy = directory / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    return copy


@pytest.mark.registry
@pytest.mark.timeout(3 * INSTALL_TIMEOUT_S)
def test_sdk_installs_alone_next_to_the_services_opentelemetry(tmp_path: Path) -> None:
    """The SDK-only install keeps the service's OpenTelemetry, has no server, and exports."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT_S)
    python = venv / "bin" / "python"
    service_otel = _pins(OLDEST, "opentelemetry-api", "opentelemetry-sdk")
    assert len(service_otel) == 2, OLDEST  # the constraint file names both
    _pip(python, *service_otel)
    _pip(python, str(_project_copy(tmp_path)))

    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    assert "threadline" in installed
    for pin in service_otel:
        name, version = pin.split("==")
        assert installed[name] == version, f"pip replaced the service's {name}"
    assert [name for name in SERVER_PACKAGES if name in installed] == []
    # The API and the SDK are all of OpenTelemetry it needs; instrumentations are extras.
    assert sorted(n for n in installed if n.startswith("opentelemetry-")) == [
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-semantic-conventions",
    ]
    check = subprocess.run(
        [str(python), "-m", "pip", "check"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout

    script = tmp_path / "service.py"
    script.write_text(SERVICE, encoding="utf-8")
    with running_collector() as collector:
        run = subprocess.run(
            [str(python), str(script), collector.endpoint],
            env=_clean_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        spans = collector.wait_for(lambda got: any(s.name == "sdk-only span" for s in got))
    assert json.loads(run.stdout.splitlines()[-1]) == {"imported": []}
    (span,) = [s for s in spans if s.name == "sdk-only span"]
    assert span.service == "sdk-only"


def test_the_command_without_its_extra_says_what_to_install() -> None:
    """`threadline` run where click is missing names the extra instead of a traceback."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["click"] = None  # as if the cli extra were not installed
        sys.argv = ["threadline", "--version"]
        from threadline.cli.main import main
        main()
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 2
    assert 'pip install "threadline[cli]"' in completed.stderr
    assert "Traceback" not in completed.stderr
