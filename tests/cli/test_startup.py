"""The command line starts without the server: subcommands are loaded when they are called.

Each case runs ``python -X importtime -m threadline ...`` in a fresh process and reads
the modules it imported from the import-time report on stderr, so a top-level import
of the server (or of something that pulls it in) anywhere on the path fails here.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from typing import Final

import pytest

from threadline.cli import commands

# What only `serve` and `demo` may load when they run: the server, its heavy
# dependencies, and the demo's broker clients.
SERVER_ONLY: Final = (
    "threadline.server", "duckdb", "pyarrow", "fastapi", "uvicorn", "pika", "litequeue",
)  # fmt: skip


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``threadline <args>`` and return it with every module it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "threadline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return completed, modules


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in SERVER_ONLY or m.startswith(SERVER_ONLY))


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["traces", "--help"],
        ["slow", "--help"],
        ["trace", "--help"],
        ["doctor", "--help"],
        ["serve", "--help"],
        ["demo", "--help"],
    ],
    ids=" ".join,
)
def test_commands_start_without_the_server(args: list[str]) -> None:
    """`threadline --version` and each command's help load no server, DuckDB, Arrow or FastAPI."""
    completed, modules = imported_modules(*args)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "threadline.cli.commands" in modules  # the report covers the command's imports
    assert heavy(modules) == []


READ_COMMANDS: Final = [
    ["traces"], ["trace", "0" * 32], ["journeys"], ["journey", "s-1"], ["services"],
    ["map"], ["red", "gateway"], ["slow", "gateway"], ["errors"], ["propagation"],
    ["critical-path", "0" * 32], ["compare", "0" * 32, "1" * 32],
]  # fmt: skip


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_a_read_command_asking_a_server_loads_no_server(args: list[str]) -> None:
    """Each read command, asking a port with nothing on it, fails cleanly, server unloaded."""
    completed, modules = imported_modules(*args, "--server", "http://127.0.0.1:9")
    assert completed.returncode == 1
    assert "cannot reach Threadline" in completed.stderr
    assert "threadline.cli.client" in modules  # it did try to ask
    assert heavy(modules) == []


def test_version_is_the_package_version() -> None:
    """`threadline --version` prints the installed distribution's version."""
    completed, _ = imported_modules("--version")
    assert completed.returncode == 0
    assert completed.stdout.strip().endswith(f"version {importlib.metadata.version('threadline')}")


def test_every_listed_command_loads_under_its_name() -> None:
    """Each name in the lazy table is a command of that name in the module it points to."""
    for name in commands.COMMAND_MODULES:
        assert commands.load_command(name).name == name
    defined = set()
    for module in set(commands.COMMAND_MODULES.values()):
        defined |= {c.name for c in __import__(module, fromlist=["COMMANDS"]).COMMANDS}
    assert defined == set(commands.COMMAND_MODULES)  # no command left out of the table
