"""The demo's child processes: started apart, tied to the demo's life, always stopped.

Each child runs in its own process group, so a Ctrl-C at the terminal reaches only
the demo, which then stops the children in order (the shop first, so it can flush
its spans, then the server). On Linux each child also asks the kernel for a signal
when the demo dies (``PR_SET_PDEATHSIG``), so even a SIGKILLed demo leaves nothing
behind. Stopping is SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from threadline import conventions

HOST: Final = conventions.DEFAULT_HOST
# Starting a Python service with its imports takes 1–3 s on a small machine, more
# when six start at once on two cores.
READY_TIMEOUT_S: Final = 60.0
READY_POLL_S: Final = 0.1
READY_PROBE_TIMEOUT_S: Final = 1.0
# How long a child gets to finish requests and flush spans after SIGTERM.
STOP_GRACE_S: Final = 8.0
LOG_TAIL_LINES: Final = 15

_PR_SET_PDEATHSIG: Final = 1


def _load_prctl() -> Callable[..., int] | None:
    # Resolved once in the parent: loading a library between fork and exec is unsafe.
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()


class PortInUse(RuntimeError):
    """The port the demo was asked to use is taken by another process."""


class StartupError(RuntimeError):
    """A child exited or never became ready; the message carries the end of its log."""


@dataclass(slots=True)
class ChildProcess:
    """One started child: its name for people, its process, and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ensure_port_free(port: int, host: str = HOST) -> None:
    """Raise ``PortInUse`` with a sentence a person can act on if ``port`` is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn does: a port whose old connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use (is another `threadline serve` "
                    f"or demo running?); stop it or pick another port with --port"
                ) from exc
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _die_with_parent(parent_pid: int, death_signal: signal.Signals) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child between fork and exec. The death signal is tied to the
        # thread that forked, so the demo starts children from its main thread.
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        # The demo may have died before prctl took effect: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class Children:
    """Every process the demo started, so that stopping leaves none behind."""

    def __init__(self) -> None:
        self._started: list[ChildProcess] = []

    @property
    def started(self) -> tuple[ChildProcess, ...]:
        return tuple(self._started)

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        ready_url: str,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> ChildProcess:
        """Start ``argv``; if the demo dies without stopping it, it gets ``death_signal``."""
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid(), death_signal),
            )
        child = ChildProcess(name, popen, log_path, ready_url)
        self._started.append(child)
        return child

    def wait_ready(
        self, children: Iterable[ChildProcess], timeout_s: float = READY_TIMEOUT_S
    ) -> None:
        """Return once every child answers 200 at its ready URL; raise ``StartupError`` if
        one exits first or the time runs out."""
        waiting = list(children)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=READY_PROBE_TIMEOUT_S) as client:
            while waiting:
                for child in list(waiting):
                    if not child.alive():
                        raise StartupError(
                            f"{child.name} exited with code {child.popen.returncode} while "
                            f"starting. Last lines of its output:\n{child.log_tail()}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(child.ready_url).status_code == 200:
                            waiting.remove(child)
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    names = ", ".join(c.name for c in waiting)
                    raise StartupError(
                        f"{names} did not become ready within {timeout_s:g} s. Last lines of "
                        f"{waiting[0].name}'s output:\n{waiting[0].log_tail()}"
                    )
                time.sleep(READY_POLL_S)

    def stop(self, children: Iterable[ChildProcess] | None = None) -> None:
        """SIGTERM the given children (default: all) at once, wait, then SIGKILL stragglers."""
        targets = [c for c in (self._started if children is None else children) if c.alive()]
        for child in targets:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in targets:
            try:
                child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.popen.wait()

    def stop_all(self) -> None:
        """Stop everything; interrupting this (a second Ctrl-C) still kills what is left."""
        try:
            self.stop()
        finally:
            for child in self._started:
                if child.alive():
                    _signal_group(child, signal.SIGKILL)
                    child.popen.wait()


def _signal_group(child: ChildProcess, signum: signal.Signals) -> None:
    # The child leads its own group; signalling the group also reaches anything it forked.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)
