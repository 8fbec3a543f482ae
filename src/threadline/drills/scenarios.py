"""The named failure scenarios of ``threadline drill`` and how each is brought about.

A scenario is a ``Fault``: ``begin`` puts the fleet in the failure, ``end`` takes it
out. ``prepare`` builds one from the command's options, or returns ``Skipped`` with
the reason when the deployment does not allow it (no restart command was given, the
proxy's port needs privileges the command lacks): a drill never half-runs a scenario.

- ``backend-down``: the drill's proxy (``proxy``) cuts every connection to the
  tracing backend and resets new ones, for the drill's duration;
- ``backend-slow``: the proxy holds every chunk the SDK sends for ``delay_s``;
- ``broker-restart``: a command the deployment provides (``--restart-command``,
  e.g. ``docker restart rabbitmq``) is run once; the drill watches the fleet for its
  duration from then on.
"""

from __future__ import annotations

import enum
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from threadline.drills.proxy import BackendProxy

# A restart command that takes longer is not a restart; the drill stops waiting.
RESTART_TIMEOUT_S: Final = 120.0
# Exit statuses of a shell that could not run the command at all.
_NOT_RUNNABLE: Final = {126: "not executable", 127: "not found"}
_ERROR_TAIL_CHARS: Final = 300


class Scenario(enum.StrEnum):
    BACKEND_DOWN = "backend-down"
    BACKEND_SLOW = "backend-slow"
    BROKER_RESTART = "broker-restart"


class FaultSkipped(Exception):
    """The scenario cannot run here; the message says why."""


class Fault(Protocol):
    def describe(self) -> str: ...

    def begin(self) -> None:
        """Put the fleet in the failure; raises ``FaultSkipped`` when it cannot."""

    def end(self) -> None:
        """Take the failure away (nothing for a one-shot command)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    scenario: Scenario
    reason: str


class BackendOutage:
    def __init__(self, proxy: BackendProxy, duration_s: float) -> None:
        self._proxy, self._duration_s = proxy, duration_s

    def describe(self) -> str:
        return f"tracing backend unreachable for {self._duration_s:g}s (proxy resets connections)"

    def begin(self) -> None:
        self._proxy.set_down()

    def end(self) -> None:
        self._proxy.set_up()


class SlowBackend:
    def __init__(self, proxy: BackendProxy, duration_s: float, delay_s: float) -> None:
        self._proxy, self._duration_s, self._delay_s = proxy, duration_s, delay_s

    def describe(self) -> str:
        return (
            f"tracing backend slow for {self._duration_s:g}s "
            f"(+{self._delay_s * 1000:g} ms per export request)"
        )

    def begin(self) -> None:
        self._proxy.set_slow(self._delay_s)

    def end(self) -> None:
        self._proxy.set_up()


class CommandRestart:
    """Runs the deployment's restart command (no shell: the words as given)."""

    def __init__(self, command: Sequence[str]) -> None:
        self._command = tuple(command)

    def describe(self) -> str:
        return f"broker restarted by: {' '.join(self._command)}"

    def begin(self) -> None:
        try:
            done = subprocess.run(
                self._command, capture_output=True, text=True, timeout=RESTART_TIMEOUT_S
            )
        except PermissionError as exc:
            raise FaultSkipped(f"the restart command may not be run here: {exc}") from None
        except FileNotFoundError:
            raise FaultSkipped(f"the restart command {self._command[0]!r} is not found") from None
        except subprocess.TimeoutExpired:
            raise FaultSkipped(
                f"the restart command did not finish within {RESTART_TIMEOUT_S:g}s"
            ) from None
        if done.returncode != 0:
            why = _NOT_RUNNABLE.get(done.returncode) or (
                done.stderr.strip()[-_ERROR_TAIL_CHARS:] or "no error output"
            )
            raise FaultSkipped(
                f"the restart command exited with status {done.returncode} ({why}); "
                "it may lack the privileges to restart the broker"
            )

    def end(self) -> None:
        return None


def prepare(
    scenario: Scenario,
    *,
    proxy: BackendProxy | None,
    duration_s: float,
    delay_s: float,
    restart_command: Sequence[str],
) -> Fault | Skipped:
    """The fault for ``scenario``, or why it is skipped in this deployment.

    ``proxy`` is the started proxy the services export through; None when there is
    none (the caller skips the backend scenarios when it cannot listen).
    """
    if scenario is Scenario.BROKER_RESTART:
        if not restart_command:
            return Skipped(
                scenario,
                "this deployment gives the drill no way to restart the broker "
                "(pass --restart-command, e.g. 'docker restart rabbitmq')",
            )
        return CommandRestart(restart_command)
    if proxy is None:
        return Skipped(scenario, "the drill's proxy is not running")
    if scenario is Scenario.BACKEND_DOWN:
        return BackendOutage(proxy, duration_s)
    return SlowBackend(proxy, duration_s, delay_s)
