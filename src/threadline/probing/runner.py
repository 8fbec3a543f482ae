"""Running a probe: send its steps as one synthetic journey, wait for the traces, judge.

Each step is sent with a ``traceparent`` the probe makes up (a fresh trace id per
step, flagged sampled) and baggage ``journey.id=<probe id>,journey.synthetic=true``
(plus the ``X-Threadline-Synthetic`` header for entry points whose propagator reads
no baggage), so the probe knows each step's trace id without any SDK, and every
service the journey reaches marks its spans synthetic.

HTTP is the standard library's: the command line imports no HTTP client package.
Fetching traces is the caller's (``fetch``): the command line asks the API with its
client, the server's drills read the store.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote

from threadline.conventions import (
    API_PREFIX,
    JOURNEY_ID,
    JOURNEY_SYNTHETIC,
    SYNTHETIC_HEADER,
    SYNTHETIC_TRUE,
)
from threadline.probing.plan import Plan, Step
from threadline.probing.verdict import (
    DEFAULT_TOLERANCE_NS,
    ProbeSpan,
    StepOutcome,
    Verdict,
    judge,
    span_from_json,
)

# A step's request may take this long before it counts as unanswered.
REQUEST_TIMEOUT_S: Final = 10.0
# Spans reach the server within the SDK's export delay (1 s by default) plus a batch;
# a trace that still grows after this long is waited for until ``wait_s``.
DEFAULT_WAIT_S: Final = 15.0
# A trace counts as complete once its span count held still this long.
DEFAULT_SETTLE_S: Final = 1.5
POLL_S: Final = 0.25

# The spans of one trace as the API answers them, or None while none has arrived.
FetchTrace = Callable[[str], Sequence[Mapping[str, object]] | None]


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """A finished probe: the verdict, the journey id it ran as, and each step's answer."""

    journey_id: str
    verdict: Verdict
    outcomes: tuple[StepOutcome, ...]
    traces: Mapping[str, tuple[ProbeSpan, ...]] = field(default_factory=dict)


def new_journey_id() -> str:
    return f"probe-{secrets.token_hex(6)}"


def probe_headers(trace_id: str, span_id: str, journey_id: str) -> dict[str, str]:
    """The headers that make a request the start of a step of a synthetic journey."""
    return {
        "traceparent": f"00-{trace_id}-{span_id}-01",
        "baggage": f"{JOURNEY_ID}={journey_id},{JOURNEY_SYNTHETIC}={SYNTHETIC_TRUE}",
        SYNTHETIC_HEADER: SYNTHETIC_TRUE,
    }


def send_step(step: Step, journey_id: str) -> StepOutcome:
    """Send one step in a trace of its own; an unreachable URL is an outcome, not an error."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**dict(step.headers), **probe_headers(trace_id, span_id, journey_id)}
    data = step.body.encode("utf-8") if step.body is not None else None
    request = urllib.request.Request(step.url, data=data, headers=headers, method=step.method)
    started = time.monotonic_ns()
    status: int | None
    error = None
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
            answer.read()
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.read()
    except (urllib.error.URLError, OSError) as exc:
        status, error = None, str(getattr(exc, "reason", exc))
    return StepOutcome(
        step=step,
        trace_id=trace_id,
        parent_span_id=span_id,
        status=status,
        elapsed_ns=time.monotonic_ns() - started,
        error=error,
    )


def wait_for_traces(
    trace_ids: Sequence[str],
    fetch: FetchTrace,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    settle_s: float = DEFAULT_SETTLE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, tuple[ProbeSpan, ...]]:
    """Each trace's spans once every trace has some and none grew for ``settle_s``,
    or whatever arrived when ``wait_s`` ran out."""
    deadline = clock() + wait_s
    found: dict[str, tuple[ProbeSpan, ...]] = {}
    counts: dict[str, int] = {}
    steady_since = clock()
    while True:
        changed = False
        for trace_id in trace_ids:
            raw = fetch(trace_id)
            spans = tuple(span_from_json(span) for span in raw) if raw else ()
            if len(spans) != counts.get(trace_id, 0):
                changed = True
            counts[trace_id] = len(spans)
            found[trace_id] = spans
        now = clock()
        if changed:
            steady_since = now
        complete = all(counts.get(trace_id) for trace_id in trace_ids)
        if (complete and now - steady_since >= settle_s) or now >= deadline:
            return found
        sleep(POLL_S)


def run_probe(
    plan: Plan,
    fetch: FetchTrace,
    *,
    journey_id: str | None = None,
    wait_s: float = DEFAULT_WAIT_S,
    settle_s: float = DEFAULT_SETTLE_S,
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
) -> ProbeRun:
    """Send every step in order, wait for their traces, and judge them."""
    journey = journey_id or new_journey_id()
    outcomes = tuple(send_step(step, journey) for step in plan.steps)
    traces = wait_for_traces(
        [outcome.trace_id for outcome in outcomes], fetch, wait_s=wait_s, settle_s=settle_s
    )
    verdict = judge(plan, outcomes, traces, tolerance_ns=tolerance_ns)
    return ProbeRun(journey_id=journey, verdict=verdict, outcomes=outcomes, traces=traces)


def api_fetcher(server_url: str, *, token: str | None = None) -> FetchTrace:
    """Fetch a trace's spans from a Threadline server's API (first page: a probe's
    traces are small); None while the server has none of it."""
    base = server_url.rstrip("/") + API_PREFIX
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def fetch(trace_id: str) -> Sequence[Mapping[str, object]] | None:
        request = urllib.request.Request(
            f"{base}/traces/{quote(trace_id, safe='')}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                spans: Sequence[Mapping[str, object]] = json.loads(answer.read())["spans"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return spans

    return fetch
