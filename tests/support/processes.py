"""Real subprocesses for tests: `threadline serve` on a free loopback port, and scripts that
print a JSON line when ready. Each is stopped when its block ends."""

from __future__ import annotations

import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from threadline.demo.processes import free_port
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

STARTUP_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.05
LOG_TAIL_CHARS: Final = 4000


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process is still there after STOP_TIMEOUT_S."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


def sigkill_once_said(
    script: str, *args: str, wait_s: float, until: Callable[[], bool] | None = None
) -> str:
    """Run the Python ``script`` with ``args`` in a process of its own; once it prints a
    line (and then ``until`` holds, polled), SIGKILL it. Returns that line; fails with
    the script's error output if it ended first, or if either wait passed ``wait_s``."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline() if readable(process.stdout, wait_s) else ""
        exited = process.poll() is not None
        assert line, process.stderr.read() if exited else f"nothing printed in {wait_s} s"
        deadline = time.monotonic() + wait_s
        while until is not None and not until():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the awaited moment never came"
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=wait_s)
        # Ended by the kill, not on its own just before it.
        assert process.returncode == -signal.SIGKILL, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=wait_s)
    return line


def readable(stream: Any, timeout_s: float) -> bool:
    """Whether ``stream`` (a pipe) has something to read within ``timeout_s``.

    Through ``selectors`` (epoll here), not ``select.select``: a test process that has
    opened many files (chDB keeps some per thread it starts) holds descriptors past
    1024, which ``select`` refuses."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return bool(selector.select(timeout=timeout_s))


@dataclass(frozen=True, slots=True)
class ServeProcess:
    """A running `threadline serve`: its address, port, combined output log and process id."""

    url: str
    port: int
    log: Path
    pid: int


def refused_serve(
    directory: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m threadline serve` in ``directory`` with ``args``, for settings it must
    refuse: it exits, having served nothing, and the result says what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "threadline", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=STARTUP_TIMEOUT_S,
        check=False,
    )


@contextmanager
def threadline_serve(
    directory: Path,
    *args: str,
    db: Path | None = None,
    env: Mapping[str, str] | None = None,
    tls_ca: Path | None = None,
    spans: Sequence[SpanRecord] = (),
) -> Iterator[ServeProcess]:
    """Run `python -m threadline serve` in ``directory`` until the block ends.

    The store is ``db`` (default ``directory/spans.duckdb``), output goes to
    ``directory/server.log``, ``args`` are added to the command line and ``env``
    replaces the environment (default: this process's). It counts as started once
    GET /api/stats gets any HTTP answer; with ``tls_ca`` it is asked over HTTPS,
    trusting that certificate. ``spans`` are stored before the server starts: a DuckDB
    file has one owning process.
    """
    db = db or directory / "spans.duckdb"
    if spans:
        store = DuckDBStore(db)
        try:
            store.write(SpanBatch.from_records(spans)).result()
        finally:
            store.close()
    port = free_port()
    log_path = directory / "server.log"
    command = [sys.executable, "-m", "threadline", "serve", "--port", str(port)]
    command += ["--db", str(db), *args]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            cwd=directory,
        )
    try:
        scheme = "https" if tls_ca else "http"
        url = f"{scheme}://127.0.0.1:{port}"
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=tls_ca) if tls_ca else True
        )
        _wait_until_answering(process, f"{url}/api/stats", verify, log_path)
        yield ServeProcess(url, port, log_path, process.pid)
    finally:
        stop(process)


def _wait_until_answering(
    process: subprocess.Popen[bytes], url: str, verify: ssl.SSLContext | bool, log: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    for _ in range(int(STARTUP_TIMEOUT_S / POLL_S)):
        try:
            httpx.get(url, verify=verify, timeout=1.0)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
    tail = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    raise RuntimeError(f"threadline serve did not start:\n{tail}")


@contextmanager
def ready_script(
    script: Path, *args: str, env: Mapping[str, str], log: Path, timeout_s: float = 30.0
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Run the Python ``script`` as a service; yields it and the JSON line it prints when ready.

    Its stderr goes to ``log``; it is stopped (SIGTERM, then SIGKILL) when the block ends.
    """
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        yield process, _read_ready_line(process, script.stem, log, timeout_s)
    finally:
        stop(process)


def _read_ready_line(
    process: subprocess.Popen[str], name: str, log: Path, timeout_s: float
) -> dict[str, Any]:
    assert process.stdout is not None
    if not readable(process.stdout, timeout_s):
        raise AssertionError(f"{name} did not start in time: {log.read_text()}")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"{name} exited at start: {log.read_text()}")
    ready: dict[str, Any] = json.loads(line)
    return ready
