"""How long the `threadline` command takes to start, against a bare Python.

Run: ``python bench/cli_startup.py [--rounds N] [--budget-s S]``

Each round starts, in this order, ``python -c pass`` (the baseline: the interpreter
alone), then ``python -m threadline`` with ``--version``, ``traces --help``, ``slow
--help`` and ``traces`` against a loopback port with nothing listening (a read
command up to its first request: its HTTP client imported, the connection refused),
and ``serve --help``. Commands are interleaved round by round so that load on the
machine hits them alike. It prints the median wall time of each and the time it adds
to the baseline; the goal is under 0.3 s added for ``--version`` and the read
commands. Every loop is bounded by ``--rounds`` and by ``--budget-s`` overall.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Final

GOAL_ADDED_S: Final = 0.3


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def commands() -> dict[str, list[str]]:
    python = sys.executable
    down = f"http://127.0.0.1:{closed_port()}"
    return {
        "python -c pass": [python, "-c", "pass"],
        "threadline --version": [python, "-m", "threadline", "--version"],
        "threadline traces --help": [python, "-m", "threadline", "traces", "--help"],
        "threadline slow --help": [python, "-m", "threadline", "slow", "--help"],
        "threadline traces (server down)": [python, "-m", "threadline", "traces", "--server", down],
        "threadline serve --help": [python, "-m", "threadline", "serve", "--help"],
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget-s", type=float, default=120.0)
    options = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    runs = commands()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for argv in runs.values():  # warm the file cache and .pyc files once, untimed
        timed(argv, env)
    deadline = time.monotonic() + options.budget_s
    for _ in range(options.rounds):
        if time.monotonic() > deadline:
            break
        for name, argv in runs.items():
            times[name].append(timed(argv, env))
    baseline = statistics.median(times["python -c pass"])
    rounds = len(times["python -c pass"])
    print(f"start-up, median of {rounds} rounds (goal: under {GOAL_ADDED_S} s added)")
    print(f"  {'command':34} {'median':>9} {'added':>9}")
    for name, samples in times.items():
        median = statistics.median(samples)
        added = median - baseline
        print(f"  {name:34} {median * 1000:7.0f} ms {added * 1000:+7.0f} ms")


if __name__ == "__main__":
    main()
