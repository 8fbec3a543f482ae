"""The service map's layout function, unit-tested under Node (``map_layout.test.mjs``).

The layout is plain JavaScript with no DOM access, so its tests run in Node's own test
runner: callers before callees, barycentre order, cycles, parallel edges of any kind,
and, for fleets of 2 to 30 services in both directions, no overlapping boxes or labels
and no edge through a box.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.missing import require_executable

TESTS = Path(__file__).resolve().parent / "map_layout.test.mjs"
NODE_TIMEOUT_S = 120


def test_map_layout_unit_tests_pass() -> None:
    """Every case in map_layout.test.mjs passes."""
    node = require_executable("node")
    result = subprocess.run(
        [node, "--test", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        cwd=TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
