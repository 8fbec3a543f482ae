"""The one way a test says that something it needs is missing: skip here, fail in CI.

On a laptop without RabbitMQ or Chromium, a test that needs one is skipped with a
message naming what is missing and how to get it. In CI (``CI=true``, as GitHub
Actions, GitLab CI and most others set it) every service, package and browser the
tests use must be there, so the same test fails instead: a skip there would turn
a broken service into a green run that checked nothing.

Every test that depends on its surroundings goes through ``missing`` (directly or
through ``require_port``, ``require_module`` and ``require_executable``); none calls
``pytest.skip`` or ``pytest.importorskip`` itself.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
from collections.abc import Mapping
from types import ModuleType
from typing import Final, NoReturn

import pytest

# Values of CI that mean "this is a CI run"; anything else (unset, "false", "0") does not.
_CI_VALUES: Final = frozenset({"true", "1", "yes"})
CONNECT_TIMEOUT_S: Final = 1.0
SERVICES_HINT: Final = "scripts/services.sh starts it"


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``CI`` says this run is a CI run."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() in _CI_VALUES


def missing(what: str) -> NoReturn:
    """Skip the test saying ``what`` is missing; under ``CI=true``, fail it instead.

    Works in a test, a fixture, and at module level (then the whole module is skipped,
    or fails to collect in CI).
    """
    if in_ci():
        pytest.fail(f"{what} (CI=true: every service and browser the tests use must be there)")
    pytest.skip(what, allow_module_level=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def require_port(name: str, port: int) -> None:
    """``missing`` unless ``name`` answers on 127.0.0.1:``port``."""
    if not port_open(port):
        missing(f"{name} does not answer on 127.0.0.1:{port} ({SERVICES_HINT})")


def require_module(name: str) -> ModuleType:
    """The imported module ``name``; ``missing`` if it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"the Python package {name} is not installed ({exc}); it is in the test extra")


def require_executable(name: str) -> str:
    """The path of the program ``name`` on PATH (or an absolute path); ``missing`` if absent."""
    found = shutil.which(name)
    if found is None:
        missing(f"the program {name} is not installed")
    return found
