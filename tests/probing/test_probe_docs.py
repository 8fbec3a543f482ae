"""docs/probes.md: its probe file is a valid plan and its journey example runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Final

from threadline.probing.plan import parse_plan
from threadline.sdk.journey import current_journey

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "probes.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_documented_probe_file_is_a_valid_plan() -> None:
    """The checkout.toml of the page parses into its two steps and five services."""
    (text,) = [block for block in _blocks("toml") if "[[probe]]" not in block]
    plan = parse_plan(tomllib.loads(text))
    assert [step.name for step in plan.steps] == ["add to cart", "checkout"]
    assert plan.steps[1].budget_ns == 800_000_000
    assert len(plan.services) == 5


def test_the_documented_journey_marks_the_baggage() -> None:
    """The python example runs, and inside it the journey is synthetic."""
    python, _fixture = _blocks("python")[:2]  # the third is the drills' status check
    seen: dict[str, str] = {}
    exec(  # the page's example, with its body made to record the baggage
        compile(python.replace("...", "seen.update(current_journey())"), "probes.md", "exec"),
        {"seen": seen, "current_journey": current_journey},
    )
    assert seen == {"journey.id": "smoke-42", "journey.synthetic": "true"}
