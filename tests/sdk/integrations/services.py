"""Boundary test services as real processes: start a scenario script, read its ready line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sdk.conftest import clean_environ
from support.processes import ready_script

SCENARIOS: Final = Path(__file__).parent / "scenarios"


@contextmanager
def running_script(
    script: str, *args: str, env: Mapping[str, str], log: Path
) -> Iterator[dict[str, Any]]:
    """Run ``scenarios/<script>.py`` as a service; yields the JSON line it prints when ready.

    The process is terminated (then killed if it lingers) when the block ends.
    """
    path = SCENARIOS / f"{script}.py"
    with ready_script(path, *args, env=clean_environ(env), log=log) as (_, ready):
        yield ready
