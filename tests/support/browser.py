"""Debian's Chromium, the one browser the tests drive (through Playwright): never a
downloaded build. The flags keep it headless and off the network beyond loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Final

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
