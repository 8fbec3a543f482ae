"""`threadline drill backend-down` against a real fleet: two instrumented services on
loopback (front calls back over HTTP) exporting through the drill's proxy to a real
`threadline serve`. The drill's report of what each SDK dropped and retried matches
the SDK's own counters in each process, and propagation is reported intact."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.processes import ready_script, threadline_serve
from threadline.demo.processes import free_port

SERVICE: Final = Path(__file__).parent / "fleet_service.py"
# Export settings that make a 3 s outage cost spans: a batch is given up after 1 s of
# retries, and the SDK reports its counters every half second. A request may take 5 s:
# on a loaded machine a healthy server's answer can take seconds, and a batch given
# up then (before the drill's baseline) is a drop the drill rightly leaves out.
SDK_SETTINGS: Final = {
    "THREADLINE_EXPORT_DELAY_MS": "100",
    "THREADLINE_RETRY_DEADLINE_S": "1",
    "THREADLINE_RETRY_BACKOFF_S": "0.1",
    "THREADLINE_EXPORT_TIMEOUT_S": "5",
    "THREADLINE_STATS_INTERVAL_S": "0.5",
    "THREADLINE_SAMPLING_POLL_S": "0",
    "THREADLINE_BAGGAGE_ALLOWED_HOSTS": "127.0.0.1",
    "PYTHONUNBUFFERED": "1",
}
# Twice their retry deadline plus export timeout: batches the fault held are settled by
# then, with room for a loaded machine where a retry starts late.
GRACE: Final = "10s"
DRILL_TIMEOUT_S: Final = 120
# An address nothing answers on: a drill that is skipped must not need it.
NOWHERE: Final = "http://127.0.0.1:9"


def _environ(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    return {**env, **extra}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[str, str, str, dict[str, httpx.Client]]]:
    """A server, the proxy address the services export to, and the two services."""
    proxy = f"127.0.0.1:{free_port()}"
    sdk = {**SDK_SETTINGS, "THREADLINE_ENDPOINT": f"http://{proxy}"}
    with ExitStack() as stack:
        served = stack.enter_context(threadline_serve(tmp_path, env=_environ({})))
        _, back = stack.enter_context(
            ready_script(
                SERVICE, env=_environ({**sdk, "FLEET_SERVICE": "back"}), log=tmp_path / "back.log"
            )
        )
        _, front = stack.enter_context(
            ready_script(
                SERVICE,
                env=_environ(
                    {
                        **sdk,
                        "FLEET_SERVICE": "front",
                        "FLEET_DOWNSTREAM": f"http://127.0.0.1:{back['port']}",
                    }
                ),
                log=tmp_path / "front.log",
            )
        )
        clients = {
            name: stack.enter_context(
                httpx.Client(base_url=f"http://127.0.0.1:{ready['port']}", timeout=10)
            )
            for name, ready in (("front", front), ("back", back))
        }
        yield served.url, proxy, f"http://127.0.0.1:{front['port']}/work", clients


def drill(*args: str) -> tuple[int, dict[str, Any]]:
    ran = subprocess.run(
        [sys.executable, "-m", "threadline", "drill", *args, "--json"],
        capture_output=True, text=True, timeout=DRILL_TIMEOUT_S, check=False,
        env=_environ({}),
    )  # fmt: skip
    assert ran.stdout, ran.stderr
    return ran.returncode, json.loads(ran.stdout)


def test_backend_down_reports_the_drops_and_retries_the_sdks_counted(
    fleet: tuple[str, str, str, dict[str, httpx.Client]],
) -> None:
    """3 s without the backend: each service's dropped and retried spans in the report
    are its SDK's own counters (nothing was lost or retried before the drill); journeys
    before and after pass, so propagation is intact; both services appear."""
    server, proxy, entry, clients = fleet
    status, report = drill(
        "backend-down", entry, "--expect-service", "front", "--expect-service", "back",
        "--proxy", proxy, "--server", server, "--duration", "3s", "--before", "2s",
        "--after", "2s", "--interval", "200ms", "--wait", "10s", "--grace", GRACE,
        "--settle", "20s",
    )  # fmt: skip
    assert status == 0, report
    assert report["propagation_intact"] is True
    by_service = {s["service"]: s for s in report["services"]}
    assert set(by_service) == {"front", "back"}
    for name, client in clients.items():
        own = client.get("/stats").json()
        found = by_service[name]
        assert found["reported"], found
        assert (found["dropped_spans"], found["retried_spans"]) == (
            own["dropped_total"],
            own["retried"],
        ), (name, found, own)
        assert found["dropped_by_reason"] == {k: v for k, v in own["dropped"].items() if v}
    # The outage cost something: the SDKs gave up batches after their 1 s deadline.
    assert sum(s["dropped_spans"] for s in report["services"]) > 0
    phases = {p["phase"]: p for p in report["propagation"]}
    for phase in ("before", "after"):
        assert phases[phase]["journeys"] > 0
        assert phases[phase]["passed"] == phases[phase]["journeys"], phases[phase]
    assert [p["phase"] for p in report["latency"]] == ["before", "during", "after"]
    assert all(p["unanswered"] == 0 for p in report["latency"])


def test_backend_slow_reports_what_the_sdks_counted_and_propagation_holds(
    fleet: tuple[str, str, str, dict[str, httpx.Client]],
) -> None:
    """Each export chunk held 300 ms for 2 s: whatever the SDKs dropped or retried (a
    request may outlast its timeout) is in the report as in their own counters, and
    journeys before and after pass."""
    server, proxy, entry, clients = fleet
    status, report = drill(
        "backend-slow", entry, "--expect-service", "front", "--expect-service", "back",
        "--proxy", proxy, "--server", server, "--duration", "2s", "--delay", "300ms",
        "--before", "1s", "--after", "1s", "--interval", "200ms", "--wait", "10s",
        "--grace", GRACE, "--settle", "20s",
    )  # fmt: skip
    assert status == 0, report
    assert report["fault"].startswith("tracing backend slow for 2s")
    by_service = {s["service"]: s for s in report["services"]}
    for name, client in clients.items():
        own = client.get("/stats").json()
        assert (by_service[name]["dropped_spans"], by_service[name]["retried_spans"]) == (
            own["dropped_total"],
            own["retried"],
        )
    phases = {p["phase"]: p for p in report["propagation"]}
    assert all(phases[p]["passed"] == phases[p]["journeys"] > 0 for p in ("before", "after"))


def test_broker_restart_without_a_restart_command_is_skipped_with_the_reason() -> None:
    """The deployment gave no way to restart the broker: skipped, saying so (exit 3),
    before any traffic is sent or the server asked."""
    status, report = drill("broker-restart", NOWHERE, "--server", NOWHERE)
    assert status == 3
    assert "--restart-command" in report["skipped"]


def test_a_restart_command_that_is_refused_is_skipped_with_its_error(tmp_path: Path) -> None:
    """A restart command that fails for want of rights is a skip naming the failure."""
    script = tmp_path / "restart.sh"
    script.write_text("#!/bin/sh\necho 'permission denied while restarting rabbitmq' >&2\nexit 1\n")
    script.chmod(0o755)
    with threadline_serve(tmp_path, env=_environ({})) as served:
        status, report = drill(
            "broker-restart", NOWHERE, "--server", served.url, "--restart-command", str(script),
            "--before", "300ms", "--wait", "1s",
        )  # fmt: skip
    assert status == 3, report
    assert "permission denied while restarting rabbitmq" in report["skipped"]


def test_a_proxy_address_already_taken_is_skipped_with_the_reason() -> None:
    """Another process holds the proxy's address: the drill cannot stand between the
    services and the backend, so it is skipped, saying why (exit 3), and sends nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        status, report = drill("backend-slow", NOWHERE, "--server", NOWHERE, "--proxy", address)
    assert status == 3
    assert report["skipped"].startswith(f"cannot listen on {address}")
