"""Boundary test services as real processes: start a scenario script, read its ready line."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sdk.conftest import clean_environ

SCENARIOS: Final = Path(__file__).parent / "scenarios"


SERVICE_START_TIMEOUT_S: Final = 30.0


@contextmanager
def running_script(
    script: str, *args: str, env: Mapping[str, str], log: Path
) -> Iterator[dict[str, Any]]:
    """Run ``scenarios/<script>.py`` as a service; yields the JSON line it prints when ready.

    The process is terminated (then killed if it lingers) when the block ends.
    """
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(SCENARIOS / f"{script}.py"), *args],
            env=clean_environ(env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                if not selector.select(timeout=SERVICE_START_TIMEOUT_S):
                    raise AssertionError(f"{script} did not start: {log.read_text()}")
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"{script} exited at start: {log.read_text()}")
            yield json.loads(line)
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
