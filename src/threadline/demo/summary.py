"""What the demo found, read back through the REST API and printed for a person.

The summary answers the three questions Threadline exists for, on the data the run
just produced: where did the time go (the journey with the slowest request, its
critical path by service and its slowest step, with the dependency the demo plants),
where did it break (error traces and the path of error spans in one), what did
a user go through (the commands to look at one journey), and where users left the
checkout funnel and what they met before (``shopper_script``'s planted cause).

Every question is asked over the run's own time window: a store that already holds
earlier runs (the default ``threadline.duckdb`` in the working directory) does not
change the story, and the summary says where the older data is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from threadline import conventions
from threadline.demo.services.payments import PROVIDER_ATTRIBUTE, SLOW_PROVIDER, SLOW_TIME_S
from threadline.demo.shopper_script import DEMO_FUNNEL_NAME
from threadline.server.api.params import MAX_LIMIT

TOP_SERVICES: Final = 4
# Each of the summary's reads takes milliseconds on an idle machine; the bound is for a
# machine the demo's six processes share with other work, where one read may take
# seconds, and a summary that came late is better than none.
API_TIMEOUT_S: Final = 60.0
MS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class RunWindow:
    """When the run's users shopped: what the summary counts, in Unix ns."""

    start_ns: int
    end_ns: int

    def params(self) -> dict[str, str | int]:
        # The API takes Unix ms; widened to whole ms so no span of the run falls out.
        return {"start": self.start_ns // MS, "end": -(-self.end_ns // MS)}


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
    # The payment provider of that step (the demo's planted slow dependency), if any.
    slowest_step_provider: str | None = None
    # The median of the other steps' slowest spans: what a usual step costs.
    usual_step_ms: float | None = None


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
class EarlierData:
    """What the store held before this run began (earlier runs into the same file)."""

    journeys: int
    more_than_counted: bool
    newest_trace_start: str | None


@dataclass(frozen=True, slots=True)
class Leaving:
    """The checkout funnel over the run: journeys in, journeys through, and why they left."""

    entered: int
    finished: int
    headline: str | None


@dataclass(frozen=True, slots=True)
class DemoSummary:
    server_url: str
    users: int
    journeys: int
    traces: int
    spans: int
    more_than_counted: bool
    slowest: SlowestJourney | None
    failing: FailingPath | None
    earlier: EarlierData | None = None
    db: str = ""
    leaving: Leaving | None = None


class SummaryUnavailable(RuntimeError):
    """The server did not answer the questions the summary asks."""


def collect_summary(server_url: str, run: RunWindow, *, db: str = "") -> DemoSummary:
    """Ask the API about the run's window; raises ``SummaryUnavailable`` if it cannot answer."""
    with httpx.Client(base_url=server_url + conventions.API_PREFIX, timeout=API_TIMEOUT_S) as api:
        try:
            journeys = _get(api, "/journeys", {**run.params(), "limit": MAX_LIMIT})["journeys"]
            return DemoSummary(
                server_url=server_url,
                users=len({j["user_id"] for j in journeys if j.get("user_id")}),
                journeys=len(journeys),
                traces=sum(int(j["trace_count"]) for j in journeys),
                spans=sum(int(j["span_count"]) for j in journeys),
                more_than_counted=len(journeys) >= MAX_LIMIT,
                slowest=_slowest_journey(api, run),
                failing=_failing_path(api, run),
                earlier=_earlier_data(api, run),
                db=db,
                leaving=_leaving(api, run),
            )
        except httpx.HTTPError as exc:
            raise SummaryUnavailable(f"the Threadline API at {server_url} failed: {exc}") from exc


def _get(api: httpx.Client, path: str, params: dict[str, str | int] | None = None) -> Any:
    response = api.get(path, params=params)
    response.raise_for_status()
    return response.json()


def _slowest_journey(api: httpx.Client, run: RunWindow) -> SlowestJourney | None:
    """The journey holding the run's slowest request, and where its time went.

    Chosen by its slowest request, not by its length: a journey's length is mostly the
    user's think time, while the slowest request is where the shop made someone wait.
    """
    slowest = _get(api, "/traces", {**run.params(), "order": "slowest", "limit": 1})["traces"]
    if not slowest or not slowest[0].get("session_id"):
        return None
    session_id = str(slowest[0]["session_id"])
    journey = _get(api, f"/journeys/{_segment(session_id)}")
    narrative = _get(api, f"/journeys/{_segment(session_id)}/narrative")
    traces = journey["traces"]
    # Each step's slowest span by self time: the run's plant shows as one far above the rest.
    peaks: list[tuple[float, dict[str, Any]]] = []
    for summary in traces:
        spans = _get(api, f"/traces/{summary['trace_id']}")["spans"]
        if spans:
            peak = max(spans, key=lambda span: float(span["self_time_ms"]))
            peaks.append((float(peak["self_time_ms"]), peak))
    peaks.sort(key=lambda item: item[0], reverse=True)
    slowest_ms, slowest_span = peaks[0] if peaks else (0.0, None)
    others = [ms for ms, _ in peaks[1:]]
    provider = (slowest_span or {}).get("attributes", {}).get(PROVIDER_ATTRIBUTE)
    start = min(int(t["start_ns"]) for t in traces)
    end = max(int(t["start_ns"]) + float(t["duration_ms"]) * MS for t in traces)
    return SlowestJourney(
        session_id=session_id,
        user_id=journey.get("user_id"),
        duration_ms=(end - start) / MS,
        trace_count=len(traces),
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
        slowest_step=f"{slowest_span['service']} {slowest_span['name']}" if slowest_span else "",
        slowest_step_ms=slowest_ms,
        slowest_step_provider=str(provider) if provider is not None else None,
        usual_step_ms=statistics.median(others) if others else None,
    )


def _failing_path(api: httpx.Client, run: RunWindow) -> FailingPath | None:
    errors = _get(api, "/traces", {**run.params(), "status": "error", "limit": MAX_LIMIT})["traces"]
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


def _earlier_data(api: httpx.Client, run: RunWindow) -> EarlierData | None:
    """What earlier runs left in the store; None when the run started on an empty one."""
    before = {"end": run.start_ns // MS}
    journeys = _get(api, "/journeys", {**before, "limit": MAX_LIMIT})["journeys"]
    newest = _get(api, "/traces", {**before, "limit": 1})["traces"]
    if not journeys and not newest:
        return None
    return EarlierData(
        journeys=len(journeys),
        more_than_counted=len(journeys) >= MAX_LIMIT,
        newest_trace_start=str(newest[0]["start"]) if newest else None,
    )


def _leaving(api: httpx.Client, run: RunWindow) -> Leaving | None:
    """The demo's funnel over the run, with the headline of its biggest drop-off."""
    end_ms = int(run.params()["end"])
    seconds = max(1, -(-(run.end_ns - run.start_ns) // 1_000_000_000))
    response = api.get(
        f"/funnels/{DEMO_FUNNEL_NAME}", params={"window": f"{seconds}s", "end": end_ms}
    )
    if response.status_code == 404:  # funnels saved beside the store replaced the demo's
        return None
    response.raise_for_status()
    funnel = response.json()
    steps = funnel["steps"]
    told = [d for d in funnel["drop_offs"] if d["headline"]]
    headline = max(told, key=lambda d: d["stopped"])["headline"] if told else None
    return Leaving(steps[0]["journeys"], steps[-1]["journeys"], headline)


def _segment(value: str) -> str:
    # Session ids are opaque text: keep a "/" or "?" in one inside its path segment.
    return quote(value, safe="")


def render_summary(summary: DemoSummary, console: Console) -> None:
    console.print()
    console.rule("[bold]What Threadline saw")
    plus = "+" if summary.more_than_counted else ""
    console.print(
        f"This run: [bold]{summary.users}[/] users, [bold]{summary.journeys}{plus}[/] journeys, "
        f"[bold]{summary.traces}[/] traces, [bold]{summary.spans}[/] spans.",
        highlight=False,
    )
    if summary.earlier is not None:
        _render_earlier(summary, summary.earlier, console)
    if summary.slowest is not None:
        _render_slowest(summary.slowest, console)
    if summary.failing is not None:
        _render_failing(summary.failing, console)
    if summary.leaving is not None:
        _render_leaving(summary.leaving, console)
    console.print()
    console.print("[bold]Look further[/]:")
    for command in follow_up_commands(summary):
        console.print(f"  {command}", soft_wrap=True, highlight=False)


def _render_earlier(summary: DemoSummary, earlier: EarlierData, console: Console) -> None:
    where = f"the store {summary.db}" if summary.db else "the store"
    count = f"{earlier.journeys}{'+' if earlier.more_than_counted else ''}"
    newest = f", the newest from {earlier.newest_trace_start}" if earlier.newest_trace_start else ""
    console.print(
        f"  (Only this run is counted. {where.capitalize()} also holds earlier runs: {count} "
        f"journeys{newest}. See them with `threadline traces --sort oldest` or the UI's search "
        "over a longer time range; `threadline demo --db <new file>` starts from empty.)",
        style="dim",
        highlight=False,
    )


def follow_up_commands(summary: DemoSummary) -> list[str]:
    """The commands (and the URL) to explore what the summary points at."""
    server = _server_option(summary.server_url)
    commands = [f"{summary.server_url}/  (the web UI: search, traces, journeys, service map)"]
    if summary.slowest is not None:
        commands.append(f"{summary.server_url}/journey/{summary.slowest.session_id}")
        commands.append(f"threadline journey {summary.slowest.session_id}{server}")
        if summary.slowest.user_id:
            commands.append(f"threadline journey --user {summary.slowest.user_id}{server}")
    if summary.failing is not None:
        commands.append(f"threadline trace {summary.failing.example_trace_id}{server}")
        commands.append(f"threadline critical-path {summary.failing.example_trace_id}{server}")
    if summary.leaving is not None:
        commands.append(f"threadline funnel {DEMO_FUNNEL_NAME}{server}")
        commands.append(f"threadline flows --attr app.plan=trial{server}")
        commands.append(f"{summary.server_url}/flows")
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
        f"[bold]Slowest journey[/] (the one with the run's slowest request): session "
        f"[cyan]{slowest.session_id}[/]{who}, {slowest.duration_ms:,.0f} ms over "
        f"{slowest.trace_count} traces{errors}. Where its time went (critical path of its "
        "steps):",
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
        provider = (
            f" ({PROVIDER_ATTRIBUTE}={slowest.slowest_step_provider})"
            if slowest.slowest_step_provider
            else ""
        )
        usual = (
            f", {slowest.slowest_step_ms / slowest.usual_step_ms:,.0f}× its other steps' "
            f"slowest span (median {slowest.usual_step_ms:,.0f} ms)"
            if slowest.usual_step_ms
            else ""
        )
        console.print(
            f"  Its slowest step: [bold]{slowest.slowest_step}{provider}[/], "
            f"{slowest.slowest_step_ms:,.0f} ms of its own time{usual}.",
            highlight=False,
        )
        low, high = SLOW_TIME_S
        if slowest.slowest_step_provider == SLOW_PROVIDER:
            console.print(
                f"  That is the slow dependency this demo plants: the payment provider "
                f"[bold]{SLOW_PROVIDER}[/], which takes {low:g}–{high:g} s per charge.",
                highlight=False,
            )
        else:
            console.print(
                f"  (The demo plants a slow payment provider, {SLOW_PROVIDER}; no charge of "
                "this journey went through it.)",
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


def _render_leaving(leaving: Leaving, console: Console) -> None:
    console.print()
    console.print(
        f"[bold]Where users left[/]: of {leaving.entered} journeys entering the "
        f"{DEMO_FUNNEL_NAME} funnel, {leaving.finished} went all the way.",
        highlight=False,
    )
    if leaving.headline:
        console.print(f"  {leaving.headline}", soft_wrap=True, highlight=False)


def _server_option(server_url: str) -> str:
    # The read commands default to the standard port; any other needs --server.
    return "" if server_url == conventions.DEFAULT_ENDPOINT else f" --server {server_url}"
