"""What the demo found, read back through the REST API and printed for a person.

The summary answers the three questions Threadline exists for, on the data the run
just produced: where did the time go (the slowest journey, its self time by
service), where did it break (error traces and the path of error spans in one),
and what did a user go through (the commands to look at one journey).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from threadline import conventions
from threadline.server.api.params import MAX_LIMIT

TOP_SERVICES: Final = 4
API_TIMEOUT_S: Final = 15.0


@dataclass(frozen=True, slots=True)
class ServiceShare:
    service: str
    time_ms: float
    share: float


@dataclass(frozen=True, slots=True)
class SlowestJourney:
    session_id: str
    user_id: str | None
    duration_ms: float
    trace_count: int
    failed_steps: int
    stopped_after_failure: bool
    # Each service's share of the critical paths of the journey's steps.
    time_by_service: tuple[ServiceShare, ...]
    # The span that spent the most time itself: "service span-name", and that time.
    slowest_step: str
    slowest_step_ms: float


@dataclass(frozen=True, slots=True)
class FailingPath:
    error_traces: int
    more_than_counted: bool
    example_trace_id: str
    # "service span-name" of the failed requests of the example, outermost first,
    # ending with the span where the error started.
    path: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class DemoSummary:
    server_url: str
    spans: int
    traces: int
    journeys: int
    slowest: SlowestJourney | None
    failing: FailingPath | None


class SummaryUnavailable(RuntimeError):
    """The server did not answer the questions the summary asks."""


def collect_summary(server_url: str) -> DemoSummary:
    """Ask the API what is stored; raises ``SummaryUnavailable`` if it cannot answer."""
    with httpx.Client(base_url=server_url + conventions.API_PREFIX, timeout=API_TIMEOUT_S) as api:
        try:
            stats = _get(api, "/stats")
            return DemoSummary(
                server_url=server_url,
                spans=int(stats["spans"]),
                traces=int(stats["traces"]),
                journeys=int(stats["sessions"]),
                slowest=_slowest_journey(api),
                failing=_failing_path(api),
            )
        except httpx.HTTPError as exc:
            raise SummaryUnavailable(f"the Threadline API at {server_url} failed: {exc}") from exc


def _get(api: httpx.Client, path: str, params: dict[str, str | int] | None = None) -> Any:
    response = api.get(path, params=params)
    response.raise_for_status()
    return response.json()


def _slowest_journey(api: httpx.Client) -> SlowestJourney | None:
    found = _get(api, "/journeys", {"order": "slowest", "limit": 1})["journeys"]
    if not found:
        return None
    journey = found[0]
    session_id = str(journey["session_id"])
    traces = _get(api, f"/journeys/{_segment(session_id)}")["traces"]
    narrative = _get(api, f"/journeys/{_segment(session_id)}/narrative")
    slowest_step, slowest_step_ms = "", 0.0
    for summary in traces:
        detail = _get(api, f"/traces/{summary['trace_id']}")
        for span in detail["spans"]:
            if float(span["self_time_ms"]) > slowest_step_ms:
                slowest_step = f"{span['service']} {span['name']}"
                slowest_step_ms = float(span["self_time_ms"])
    return SlowestJourney(
        session_id=session_id,
        user_id=journey.get("user_id"),
        duration_ms=float(journey["duration_ms"]),
        trace_count=int(journey["trace_count"]),
        failed_steps=int(narrative["failed_step_count"]),
        stopped_after_failure=bool(narrative["stopped_after_failure"]),
        time_by_service=tuple(
            ServiceShare(
                # Queue dwell is its own segment of the critical path, not a service.
                f"{share['name']} (queue)" if share["kind"] == "queue" else share["name"],
                float(share["duration_ms"]),
                float(share["fraction"]),
            )
            for share in narrative["service_shares"][:TOP_SERVICES]
        ),
        slowest_step=slowest_step,
        slowest_step_ms=slowest_step_ms,
    )


def _failing_path(api: httpx.Client) -> FailingPath | None:
    errors = _get(api, "/traces", {"status": "error", "limit": MAX_LIMIT})["traces"]
    if not errors:
        return None
    example = errors[0]
    spans = _get(api, f"/traces/{example['trace_id']}")["spans"]
    failed = [s for s in spans if s["status"] == "error"]
    if not failed:
        return None
    # The requests that failed, service by service (server spans, outermost first),
    # then the deepest failed span: where the error started.
    origin = max(failed, key=lambda s: int(s["depth"]))
    path = [s for s in failed if s["kind"] == "server" and s is not origin] + [origin]
    return FailingPath(
        error_traces=len(errors),
        more_than_counted=len(errors) >= MAX_LIMIT,
        example_trace_id=str(example["trace_id"]),
        path=tuple(f"{s['service']} {s['name']}" for s in path),
        reason=str(origin.get("status_message") or ""),
    )


def _segment(value: str) -> str:
    # Session ids are opaque text: keep a "/" or "?" in one inside its path segment.
    return quote(value, safe="")


def render_summary(summary: DemoSummary, console: Console) -> None:
    console.print()
    console.rule("[bold]What Threadline saw")
    console.print(
        f"Stored [bold]{summary.traces}[/] traces, [bold]{summary.spans}[/] spans and "
        f"[bold]{summary.journeys}[/] journeys.",
        highlight=False,
    )
    if summary.slowest is not None:
        _render_slowest(summary.slowest, console)
    if summary.failing is not None:
        _render_failing(summary.failing, console)
    console.print()
    console.print("[bold]Look further[/]:")
    for command in follow_up_commands(summary):
        console.print(f"  {command}", soft_wrap=True, highlight=False)


def follow_up_commands(summary: DemoSummary) -> list[str]:
    """The commands (and the URL) to explore what the summary points at."""
    server = _server_option(summary.server_url)
    commands = [f"{summary.server_url}/  (the web UI: search, traces, journeys, service map)"]
    if summary.slowest is not None:
        commands.append(f"{summary.server_url}/journey/{summary.slowest.session_id}")
        commands.append(f"threadline journey {summary.slowest.session_id}{server}")
    if summary.failing is not None:
        commands.append(f"threadline trace {summary.failing.example_trace_id}{server}")
        commands.append(f"threadline critical-path {summary.failing.example_trace_id}{server}")
    commands += [
        f"threadline map{server}",
        f"threadline traces --status error{server}",
        f"threadline journeys --slowest{server}",
        f"{summary.server_url}{conventions.API_PREFIX}/docs",
    ]
    return commands


def _render_slowest(slowest: SlowestJourney, console: Console) -> None:
    who = f" of user [bold]{slowest.user_id}[/]" if slowest.user_id else ""
    errors = f", {slowest.failed_steps} of them failed" if slowest.failed_steps else ""
    console.print()
    console.print(
        f"[bold]Slowest journey[/]: session [cyan]{slowest.session_id}[/]{who}, "
        f"{slowest.duration_ms:,.0f} ms over {slowest.trace_count} traces{errors}. "
        "Where its time went (critical path of its steps):",
        highlight=False,
    )
    table = Table(box=None, padding=(0, 2))
    table.add_column("service")
    table.add_column("on the critical path", justify="right")
    table.add_column("share", justify="right")
    for share in slowest.time_by_service:
        table.add_row(share.service, f"{share.time_ms:,.1f} ms", f"{share.share:.0%}")
    console.print(table)
    if slowest.stopped_after_failure:
        console.print("  The user stopped right after a failed step.", highlight=False)
    if slowest.slowest_step:
        console.print(
            f"  Its slowest step: [bold]{slowest.slowest_step}[/], "
            f"{slowest.slowest_step_ms:,.0f} ms of its own time.",
            highlight=False,
        )


def _render_failing(failing: FailingPath, console: Console) -> None:
    count = f"{failing.error_traces}+" if failing.more_than_counted else str(failing.error_traces)
    traces = "trace" if failing.error_traces == 1 else "traces"
    console.print()
    console.print(
        f"[bold red]Failing path[/]: {count} {traces} with errors, e.g. "
        f"[cyan]{failing.example_trace_id}[/]:",
        highlight=False,
    )
    console.print("  " + " → ".join(failing.path), soft_wrap=True, highlight=False)
    if failing.reason:
        console.print(f"  reason: {failing.reason}", highlight=False)


def _server_option(server_url: str) -> str:
    # The read commands default to the standard port; any other needs --server.
    return "" if server_url == conventions.DEFAULT_ENDPOINT else f" --server {server_url}"
