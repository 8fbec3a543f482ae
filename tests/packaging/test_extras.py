"""The extras, the OpenTelemetry range and the constraint files agree with each other and
with what the docs tell people to install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Final

from threadline.cli import doctor

ROOT: Final = Path(__file__).resolve().parents[2]
PROJECT: Final = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS: Final[dict[str, list[str]]] = PROJECT["optional-dependencies"]
# What `pip install threadline` may bring: OpenTelemetry's API and SDK, nothing else.
SDK_ONLY: Final = {"opentelemetry-api", "opentelemetry-sdk"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group().lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[name] = version
    return pins


def _lower_bound(requirement: str) -> str:
    match = re.search(r">=([0-9][0-9a-z.]*)", requirement)
    assert match, f"{requirement} has no lower bound"
    return match.group(1)


def test_the_base_install_is_the_opentelemetry_sdk_alone() -> None:
    """`pip install threadline` requires OpenTelemetry's API and SDK, as ranges, nothing else."""
    dependencies = PROJECT["dependencies"]
    assert {_name(d) for d in dependencies} == SDK_ONLY
    for requirement in dependencies:
        assert "==" not in requirement, requirement
        assert ",<2" in requirement, requirement


def test_the_oldest_constraints_are_the_lower_bounds() -> None:
    """constraints/otel-oldest.txt pins exactly the lower bound of every OpenTelemetry range."""
    oldest = _pins(ROOT / "constraints" / "otel-oldest.txt")
    newest = _pins(ROOT / "constraints" / "otel-newest.txt")
    assert set(oldest) == set(newest)
    requirements = PROJECT["dependencies"] + [r for rs in EXTRAS.values() for r in rs]
    ranged = [r for r in requirements if r.startswith("opentelemetry-")]
    assert ranged  # the ranges were found
    for requirement in ranged:
        name = _name(requirement)
        assert name in oldest, f"{name} is not tested at its oldest release"
        bound = _lower_bound(requirement)
        assert oldest[name] in (bound, f"{bound}.0"), (requirement, oldest[name])


def test_every_extra_the_docs_and_doctor_name_exists() -> None:
    """The README's quick start, the install table and doctor's advice name real extras."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'python3 -m pip install ".[server]" && threadline demo' in readme
    page = (ROOT / "docs" / "instrumenting.md").read_text(encoding="utf-8")
    table = page.split("## Install", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([a-z0-9]+)`", table, re.MULTILINE))
    named |= {m for row in re.findall(r"^\| `[a-z0-9]+`(?:, `[a-z0-9]+`)+", table, re.M)
              for m in re.findall(r"`([a-z0-9]+)`", row)}  # fmt: skip
    assert {"flask", "django", "celery", "grpc", "kafka", "server", "all"} <= named
    advised = {extra for *_, extra, _ in doctor.LIBRARIES if extra}
    assert named | advised <= set(EXTRAS), (named | advised) - set(EXTRAS)


def test_server_packages_are_only_in_extras() -> None:
    """DuckDB, Arrow, FastAPI, uvicorn, Flask, pika and litequeue come with `server`."""
    server = {_name(r) for r in EXTRAS["server"]}
    assert {"duckdb", "pyarrow", "fastapi", "uvicorn", "flask", "pika", "litequeue"} <= server
