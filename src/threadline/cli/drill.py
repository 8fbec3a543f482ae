"""``threadline drill SCENARIO``: a failure scenario against a running fleet, and its cost.

The command owns a small TCP proxy (``threadline.drills.proxy``) between the
services' SDK and the tracing backend: the fleet's services export to ``--proxy``
and the proxy relays to ``--server``. It sends synthetic journeys to the entry URL
(or the steps of ``--file``) before, during and after the fault, then prints what
each service's SDK dropped and retried (from the SDK reports the server keeps),
whether propagation held, and whether users waited longer. A scenario this
deployment does not allow is skipped with the reason (exit status 3). Exit status:
0 propagation intact, 1 broken (or the server could not be asked), 2 bad arguments.
It talks HTTP to the server like the read commands.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import click

from threadline.cli.client import ApiError, ThreadlineClient
from threadline.cli.probe import trace_fetcher
from threadline.cli.reading import SERVER_ENV, duration
from threadline.conventions import DEFAULT_ENDPOINT
from threadline.drills.proxy import BackendProxy
from threadline.drills.report import as_json, render
from threadline.drills.run import SdkReport, Timing, run_drill
from threadline.drills.scenarios import FaultSkipped, Scenario, Skipped, prepare
from threadline.durations import parse_duration_ns
from threadline.probing.plan import Plan, PlanError, load_plan, single_request

SKIPPED_STATUS = 3
# How far back the SDK reports are read: a drill's baseline is the report before it.
REPORT_WINDOW = "6h"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def sdk_reader(client: ThreadlineClient) -> SdkReport:
    def read(service: str) -> Mapping[str, object] | None:
        try:
            answer: Mapping[str, object] = client.get(
                f"/services/{_segment(service)}/sdk", {"window": REPORT_WINDOW}
            )
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return answer

    return read


def _segment(value: str) -> str:
    return quote(value, safe="")


def _address(value: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` or a URL with a port; a bad one is a usage error naming the option."""
    text = value if "://" in value else f"tcp://{value}"
    try:
        parts = urlsplit(text)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
        parts = None
    if parts is None or port is None or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint=option)
    return parts.hostname, port


def _seconds(value: str | None, default: float) -> float:
    return parse_duration_ns(value) / 1e9 if value else default


@click.command("drill")
@click.argument("scenario", type=click.Choice([s.value for s in Scenario]))
@click.argument("url", required=False)
@click.option(
    "--file",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A probe file (see docs/probes.md): the journey sent during the drill.",
)
@click.option(
    "--expect-service", "services", multiple=True, metavar="SERVICE",
    help="A service the journey must reach (repeatable; with URL).",
)  # fmt: skip
@click.option(
    "--proxy",
    default="127.0.0.1:4319",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the drill's proxy listens: the services' THREADLINE_ENDPOINT.",
)
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=DEFAULT_ENDPOINT,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="Base URL of the running `threadline serve` (the proxy relays to it).",
)
@click.option("--duration", "length", callback=duration, metavar="DURATION",
              help="How long the fault lasts [default: 10s].")  # fmt: skip
@click.option("--delay", callback=duration, metavar="DURATION",
              help="Added delay per export request, backend-slow [default: 2s].")  # fmt: skip
@click.option("--before", callback=duration, metavar="DURATION",
              help="Probe traffic before the fault [default: 5s].")  # fmt: skip
@click.option("--after", callback=duration, metavar="DURATION",
              help="Probe traffic after the fault [default: 5s].")  # fmt: skip
@click.option("--interval", callback=duration, metavar="DURATION",
              help="Time between journeys [default: 500ms].")  # fmt: skip
@click.option("--wait", callback=duration, metavar="DURATION",
              help="Longest wait for the journeys' traces [default: 30s].")  # fmt: skip
@click.option("--grace", callback=duration, metavar="DURATION",
              help="The services' SDK retry deadline: reports are read once it passed "
                   "after the fault [default: 30s].")  # fmt: skip
@click.option("--settle", callback=duration, metavar="DURATION",
              help="Longest wait for the SDK reports after recovery [default: 150s].")  # fmt: skip
@click.option(
    "--restart-command",
    metavar="COMMAND",
    help="broker-restart: the command that restarts the broker here (run without a shell).",
)
@click.option("--json", "as_json_output", is_flag=True, help="Print the report as JSON.")
def drill(
    scenario: str,
    url: str | None,
    plan_file: Path | None,
    services: tuple[str, ...],
    proxy: str,
    server: str,
    length: str | None,
    delay: str | None,
    before: str | None,
    after: str | None,
    interval: str | None,
    wait: str | None,
    grace: str | None,
    settle: str | None,
    restart_command: str | None,
    as_json_output: bool,
) -> None:
    """Run failure SCENARIO while synthetic journeys flow to URL (or --file) and report
    what each SDK dropped and retried, whether propagation held, and the latency users saw."""
    chosen = Scenario(scenario)
    try:
        plan = _plan(url, plan_file, services)
    except PlanError as exc:
        click.echo(f"threadline drill: {exc}", err=True)
        raise SystemExit(2) from None
    defaults = Timing()
    timing = Timing(
        before_s=_seconds(before, defaults.before_s),
        duration_s=_seconds(length, defaults.duration_s),
        after_s=_seconds(after, defaults.after_s),
        interval_s=_seconds(interval, defaults.interval_s),
        wait_s=_seconds(wait, defaults.wait_s),
        grace_s=_seconds(grace, defaults.grace_s),
        settle_s=_seconds(settle, defaults.settle_s),
    )
    command = shlex.split(restart_command) if restart_command else []
    client = ThreadlineClient(server)
    relay: BackendProxy | None = None
    if chosen is not Scenario.BROKER_RESTART:
        relay = BackendProxy(_address(proxy, "--proxy"), _address(server, "--server"))
        try:
            relay.start()
        except PermissionError as exc:
            why = f"{exc.strerror} (a port below 1024 needs privileges this command lacks)"
            _skipped(chosen, f"cannot listen on {proxy}: {why}", as_json_output)
        except OSError as exc:
            _skipped(chosen, f"cannot listen on {proxy}: {exc.strerror}", as_json_output)
    try:
        fault = prepare(
            chosen,
            proxy=relay,
            duration_s=timing.duration_s,
            delay_s=_seconds(delay, 2.0),
            restart_command=command,
        )
        if isinstance(fault, Skipped):
            _skipped(chosen, fault.reason, as_json_output)
            return
        try:
            report = run_drill(
                plan,
                fault,
                chosen.value,
                fetch=trace_fetcher(client),
                sdk_report=sdk_reader(client),
                timing=timing,
            )
        except FaultSkipped as exc:
            _skipped(chosen, str(exc), as_json_output)
            return
        except ApiError as exc:
            click.echo(f"threadline drill: {exc.message}", err=True)
            raise SystemExit(1) from None
    finally:
        if relay is not None:
            relay.close()
    if as_json_output:
        click.echo(json.dumps(as_json(report), indent=2))
    else:
        base = client.base_url
        for line in render(report, lambda trace_id: f"{base}/trace/{trace_id}"):
            click.echo(line)
    raise SystemExit(0 if report.propagation_intact else 1)


def _skipped(scenario: Scenario, reason: str, as_json_output: bool) -> None:
    if as_json_output:
        click.echo(json.dumps({"scenario": scenario.value, "skipped": reason}, indent=2))
    else:
        click.echo(f"drill {scenario.value}: skipped: {reason}")
    raise SystemExit(SKIPPED_STATUS)


def _plan(url: str | None, plan_file: Path | None, services: tuple[str, ...]) -> Plan:
    if (url is None) == (plan_file is None):
        raise PlanError("give the entry URL or --file, one of the two")
    if plan_file is not None:
        return load_plan(plan_file)
    return single_request(str(url), services=services)


COMMANDS: list[click.Command] = [drill]
