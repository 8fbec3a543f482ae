"""Runs the in-process boundary tests (``in_process/inproc_*.py``) in a pytest subprocess.

They capture spans with the ``threadline_spans`` fixture, which installs a global
TracerProvider; the main session must stay without one. One subprocess runs them all;
each module's outcome is reported here as its own test.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Final

import pytest

from sdk.conftest import clean_environ
from support.missing import missing

IN_PROCESS: Final = Path(__file__).parent / "in_process"
MODULES: Final = sorted(path.stem for path in IN_PROCESS.glob("inproc_*.py"))
RUN_TIMEOUT_S: Final = 110.0


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Outcome lines per module (``"<test>: passed|failed|skipped <why>"``) of one inner run."""
    report = tmp_path_factory.mktemp("in-process") / "report.xml"
    root = Path(__file__).parents[3]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(IN_PROCESS),
            "-o",
            "python_files=inproc_*.py",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
        ],
        cwd=root,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert report.exists(), completed.stdout + completed.stderr
    found: dict[str, list[str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        problem = next(iter(case), None)
        if problem is None:
            line = f"{case.get('name')}: passed"
        else:
            line = f"{case.get('name')}: {problem.tag} {problem.get('message', '')}\n{problem.text}"
        found.setdefault(module, []).append(line)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_module_passes(module: str, outcomes: dict[str, list[str]]) -> None:
    """Every test of the in-process module passed (a skip names the broker that is down)."""
    lines = outcomes.get(module)
    assert lines, f"{module} ran no tests"
    skipped = [line for line in lines if ": skipped" in line]
    failed = [line for line in lines if not line.endswith(": passed") and line not in skipped]
    assert not failed, "\n".join(failed)
    if skipped:
        missing("; ".join(line.split("\n")[0] for line in skipped))
