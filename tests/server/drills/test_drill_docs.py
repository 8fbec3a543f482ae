"""docs/probes.md, "Scheduled drills": its ``[[probe]]`` table is what the server
runs, and its status check runs as written against a server whose drill passed."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import Final

import httpx

from support.drill_services import start_shop
from support.live_server import live_server
from threadline.probing.definitions import parse

DOC: Final = Path(__file__).resolve().parents[3] / "docs" / "probes.md"
WAIT_S: Final = 60.0


def _section_blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8").split("## Scheduled drills", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_the_documented_probe_table_parses() -> None:
    """The ``[[probe]]`` table is one probe of one step with its schedule and budget."""
    (table,) = _section_blocks("toml")
    (probe,) = parse({"probes": tomllib.loads(table)["probe"]}).probes
    assert (probe.name, probe.interval, probe.alert_after) == ("checkout", "1m", 2)
    assert probe.plan.steps[0].budget_ns == 800_000_000


def test_the_status_check_prints_a_passing_drill(tmp_path: Path, shop_stack: ExitStack) -> None:
    """The documented probe, pointed at a real shop and run every second by a real
    server; the documented script prints it passing."""
    (table,) = _section_blocks("toml")
    (script,) = _section_blocks("python")
    with live_server(tmp_path / "spans.duckdb", lifespan=True) as server:
        shop = start_shop(shop_stack, server.url, tmp_path)
        probes = tomllib.loads(table.replace("http://127.0.0.1:8000", shop.checkout_url))
        probes["probe"][0].update(interval="1s", wait="5s")
        probes["probe"][0]["steps"][0]["budget"] = "5s"
        httpx.put(f"{server.api_url}/probes", json={"probes": probes["probe"]}).raise_for_status()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            drill = httpx.get(f"{server.api_url}/probes/results").json()["drills"][0]
            if drill["last_run"] is not None:
                break
            time.sleep(0.2)
        ran = subprocess.run(
            [sys.executable, "-c", script.replace("http://127.0.0.1:4318", server.url)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    assert re.match(r"checkout: passing \(\d+ passed, 0 failed\)\n$", ran.stdout), ran.stdout
