"""docs/probes.md's drill section names every scenario and only options the command has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from threadline.cli.drill import drill
from threadline.drills.scenarios import Scenario

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "probes.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## Fault drills") :]


def test_every_scenario_has_a_row() -> None:
    rows = set(re.findall(r"^\| `([a-z-]+)` \|", _section(), re.MULTILINE))
    assert rows == {scenario.value for scenario in Scenario}


def test_the_options_the_section_names_exist() -> None:
    options = {opt for param in drill.params for opt in getattr(param, "opts", [])}
    # Other commands' lines (`threadline serve --port`) are not the drill's.
    lines = [line for line in _section().splitlines() if "threadline serve" not in line]
    named = set(re.findall(r"(--[a-z][a-z-]+)", "\n".join(lines)))
    assert named, "the section names no option"
    assert named <= options, named - options
