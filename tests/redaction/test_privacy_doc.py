"""The example in docs/privacy.md runs as written and prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def test_privacy_example_prints_what_the_page_shows() -> None:
    """The default-rules example's output is the `text` block that follows it."""
    page = PAGE.read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```", page, re.DOTALL)
    assert example is not None
    code, printed = example.groups()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed
