"""Examples in the user docs run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL)


def test_troubleshooting_probe_prints_the_headers_a_hop_carries(tmp_path: Path) -> None:
    """The propagation probe in docs/troubleshooting.md prints traceparent and baggage."""
    (probe,) = _python_blocks("troubleshooting.md")
    env = {
        **os.environ,
        # Nothing listens there: the probe must work without a server.
        "THREADLINE_ENDPOINT": "http://127.0.0.1:9",
        "THREADLINE_EXPORT_TIMEOUT_S": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"'traceparent': '00-[0-9a-f]{32}-[0-9a-f]{16}-03'", done.stdout)
    assert "'baggage': 'session.id=s-123'" in done.stdout
