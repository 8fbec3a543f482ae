"""``threadline probe``: send a synthetic journey into real entry points and judge its traces.

One request (``threadline probe URL``) or a scripted journey (``--file probe.toml``,
see ``threadline.probing.plan``). The steps go out marked synthetic, the command waits
for their traces at the server, checks them (``threadline.probing.verdict``) and prints
the verdict; the exit status is 0 when it passed, 1 when it failed, 2 for a bad plan,
so it can gate a deploy in CI/CD. It talks HTTP to the server like the read commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import click

from threadline.cli.client import ApiError, ThreadlineClient
from threadline.cli.reading import SERVER_ENV, duration
from threadline.conventions import DEFAULT_ENDPOINT
from threadline.durations import parse_duration_ns
from threadline.probing.plan import Plan, PlanError, load_plan, single_request
from threadline.probing.runner import DEFAULT_WAIT_S, run_probe
from threadline.probing.verdict import render


def trace_fetcher(
    client: ThreadlineClient,
) -> Callable[[str], Sequence[Mapping[str, object]] | None]:
    """Spans of a trace from the API, or None while the server has none of it."""

    def fetch(trace_id: str) -> Sequence[Mapping[str, object]] | None:
        try:
            spans: Sequence[Mapping[str, object]] = client.trace(trace_id)["spans"]
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return spans

    return fetch


@click.command("probe")
@click.argument("url", required=False)
@click.option(
    "--file",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A TOML file of steps and expectations (see docs/probes.md).",
)
@click.option(
    "--expect-service",
    "services",
    multiple=True,
    metavar="SERVICE",
    help="A service the journey must reach (repeatable; with URL).",
)
@click.option("--method", default="GET", show_default=True, help="HTTP method (with URL).")
@click.option(
    "--wait",
    "wait",
    callback=duration,
    metavar="DURATION",
    help=f"Longest wait for the traces to arrive [default: {DEFAULT_WAIT_S:.0f}s].",
)
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=DEFAULT_ENDPOINT,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="Base URL of the running `threadline serve`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def probe(
    url: str | None,
    plan_file: Path | None,
    services: tuple[str, ...],
    method: str,
    wait: str | None,
    server: str,
    as_json: bool,
) -> None:
    """Send a synthetic journey to URL (or the steps of --file) and check its traces."""
    try:
        plan = _plan(url, plan_file, services, method)
    except PlanError as exc:
        click.echo(f"threadline probe: {exc}", err=True)
        raise SystemExit(2) from None
    client = ThreadlineClient(server)
    wait_s = parse_duration_ns(wait) / 1e9 if wait else DEFAULT_WAIT_S
    try:
        run = run_probe(plan, trace_fetcher(client), wait_s=wait_s)
    except ApiError as exc:
        click.echo(f"threadline probe: {exc.message}", err=True)
        raise SystemExit(1) from None
    verdict = run.verdict
    if as_json:
        click.echo(
            json.dumps(
                {
                    "plan": verdict.plan,
                    "passed": verdict.passed,
                    "journey_id": run.journey_id,
                    "trace_ids": list(verdict.trace_ids),
                    "services": list(verdict.services),
                    "problems": [
                        {
                            "check": p.check,
                            "message": p.message,
                            "step": p.step,
                            "trace_id": p.trace_id,
                            "between": list(p.between) if p.between else None,
                        }
                        for p in verdict.problems
                    ],
                },
                indent=2,
            )
        )
    else:
        base = client.base_url
        for line in render(verdict, lambda trace_id: f"{base}/trace/{trace_id}"):
            click.echo(line)
        click.echo(f"journey: {base}/api/traces?journey_id={run.journey_id}")
    raise SystemExit(0 if verdict.passed else 1)


def _plan(url: str | None, plan_file: Path | None, services: tuple[str, ...], method: str) -> Plan:
    if (url is None) == (plan_file is None):
        raise PlanError("give a URL or --file, one of the two")
    if plan_file is not None:
        return load_plan(plan_file)
    return single_request(str(url), method=method.upper(), services=services)


COMMANDS: list[click.Command] = [probe]
