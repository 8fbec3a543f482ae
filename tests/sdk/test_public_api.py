"""The public surface of the `threadline` package."""

from __future__ import annotations

import subprocess
import sys

import threadline

from .conftest import clean_environ


def test_all_lists_exactly_the_public_names() -> None:
    """`threadline.__all__` is the documented API and every name in it resolves."""
    assert sorted(threadline.__all__) == [
        "ConfigError",
        "configure",
        "context_executor",
        "instrument",
        "journey",
        "shutdown",
        "stats",
        "wrap",
    ]
    for name in threadline.__all__:
        assert getattr(threadline, name) is not None
    assert issubclass(threadline.ConfigError, ValueError)


def test_importing_the_package_does_not_load_the_sdk_pipeline() -> None:
    """`import threadline` (as the server and CLI do) does not import the OpenTelemetry SDK."""
    code = "import sys, threadline, threadline.settings; print('opentelemetry.sdk' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert completed.stdout.strip() == "False"
