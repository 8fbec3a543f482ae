"""The verdict on a probe: did its traces show the journey whole, in order, on time?

Pure: takes what each step answered and the spans of each step's trace (fetched by
the caller), returns a ``Verdict`` listing every problem with the two services it
lies between, where that is known. The checks, in the order they are reported:

- ``status``: a step answered another HTTP status than expected;
- ``missing-trace``: no span of a step's trace arrived (the entry point is not
  instrumented, or does not continue the trace the probe sent it);
- ``broken-hop``: a CLIENT span with no span below it: the callee never joined the
  trace (not instrumented, or it dropped ``traceparent``);
- ``broken-message-hop``: a PRODUCER span no CONSUMER span joined (the queue hop
  dropped the message headers, or the consumer started a trace of its own);
- ``orphan``: a span whose parent never arrived;
- ``outside-parent``: a synchronous child that starts before or ends after its parent
  (beyond ``tolerance_ns``: clocks of two hosts differ a little);
- ``order``: a step's entry span starts before the previous step's;
- ``budget``: a step's entry span took longer than its budget;
- ``missing-service``: a service the plan names appears in none of the traces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from threadline.probing.plan import Plan, Step

# Clocks of two hosts disagree by a little; NTP keeps them within a millisecond or so.
DEFAULT_TOLERANCE_NS: Final = 2_000_000
# A server span ends after its response went out (the framework closes it when the
# handler returns and the body is flushed), so under load the callee's span may end a
# little after the caller's CLIENT span. Only an overrun beyond this is reported.
REMOTE_END_LAG_NS: Final = 100_000_000

Check = Literal[
    "status",
    "missing-trace",
    "broken-hop",
    "broken-message-hop",
    "orphan",
    "outside-parent",
    "order",
    "budget",
    "missing-service",
]

# Attributes naming the callee of a CLIENT or PRODUCER span, most telling first.
_PEER_KEYS: Final = ("peer.service", "messaging.destination.name", "server.address", "url.full")


@dataclass(frozen=True, slots=True)
class ProbeSpan:
    """What the verdict needs of a span (from the API's trace answer)."""

    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, object]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one step answered and the trace the probe sent it in."""

    step: Step
    trace_id: str
    # The parent span id the probe sent in ``traceparent``: a span of the probe's own,
    # never exported, so the entry span's parent is expected to be missing.
    parent_span_id: str
    status: int | None  # None: no answer at all
    elapsed_ns: int
    error: str | None = None  # why there was no answer


@dataclass(frozen=True, slots=True)
class Problem:
    check: Check
    message: str
    step: str | None = None
    trace_id: str | None = None
    between: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    plan: str
    problems: tuple[Problem, ...]
    trace_ids: tuple[str, ...]
    services: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def span_from_json(raw: Mapping[str, object]) -> ProbeSpan:
    """A span of the API's ``/api/traces/{id}`` answer."""
    attributes = raw.get("attributes")
    parent = raw.get("parent_span_id")
    return ProbeSpan(
        span_id=str(raw["span_id"]),
        parent_span_id=str(parent) if parent else None,
        service=str(raw["service"]),
        name=str(raw["name"]),
        kind=str(raw.get("kind", "internal")),
        start_ns=int(str(raw["start_ns"])),
        end_ns=int(str(raw["end_ns"])),
        attributes=attributes if isinstance(attributes, Mapping) else {},
    )


def judge(
    plan: Plan,
    outcomes: Sequence[StepOutcome],
    traces: Mapping[str, Sequence[ProbeSpan]],
    *,
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
) -> Verdict:
    """Every problem the steps' answers and traces show, in the order of the checks."""
    problems: list[Problem] = []
    seen_services: set[str] = set()
    previous_entry: tuple[str, ProbeSpan] | None = None
    for outcome in outcomes:
        step = outcome.step
        spans = traces.get(outcome.trace_id, ())
        seen_services.update(span.service for span in spans)
        problems += _status(outcome)
        if not spans:
            problems.append(
                Problem(
                    "missing-trace",
                    f"no span of step {step.name!r} arrived: the entry point {_host(step.url)} "
                    "is not instrumented or did not continue the trace it was sent",
                    step.name,
                    outcome.trace_id,
                )
            )
            continue
        problems += _hops(step.name, outcome.trace_id, spans)
        problems += _orphans(step.name, outcome.trace_id, spans, outcome.parent_span_id)
        problems += _outside_parents(step.name, outcome.trace_id, spans, tolerance_ns)
        entry = _entry(spans, outcome.parent_span_id)
        if entry is None:
            continue
        if previous_entry is not None and entry.start_ns < previous_entry[1].start_ns:
            problems.append(
                Problem(
                    "order",
                    f"step {step.name!r} started before step {previous_entry[0]!r} in its trace",
                    step.name,
                    outcome.trace_id,
                )
            )
        previous_entry = (step.name, entry)
        problems += _budget(step, outcome.trace_id, entry, spans)
    for service in plan.services:
        if service not in seen_services:
            problems.append(
                Problem(
                    "missing-service",
                    f"service {service!r} appears in none of the journey's traces",
                )
            )
    return Verdict(
        plan=plan.name,
        problems=tuple(problems),
        trace_ids=tuple(outcome.trace_id for outcome in outcomes),
        services=tuple(sorted(seen_services)),
    )


def render(verdict: Verdict, trace_url: Callable[[str], str]) -> list[str]:
    """The verdict as lines for a person: PASS or FAIL, then each problem with its link."""
    if verdict.passed:
        services = ", ".join(verdict.services) or "no services"
        return [f"PASS {verdict.plan}: {len(verdict.trace_ids)} step(s) through {services}"]
    lines = [f"FAIL {verdict.plan}: {len(verdict.problems)} problem(s)"]
    for problem in verdict.problems:
        where = f" [{problem.between[0]} -> {problem.between[1]}]" if problem.between else ""
        lines.append(f"  {problem.check}{where}: {problem.message}")
        if problem.trace_id is not None:
            lines.append(f"    trace: {trace_url(problem.trace_id)}")
    return lines


def _status(outcome: StepOutcome) -> list[Problem]:
    step = outcome.step
    if outcome.status == step.status:
        return []
    got = f"got {outcome.status}" if outcome.status is not None else f"no answer ({outcome.error})"
    return [
        Problem(
            "status",
            f"step {step.name!r} ({step.method} {step.url}) expected {step.status}, {got}",
            step.name,
            outcome.trace_id,
        )
    ]


def _hops(step: str, trace_id: str, spans: Sequence[ProbeSpan]) -> list[Problem]:
    with_children = {span.parent_span_id for span in spans if span.parent_span_id}
    consumed = {
        span.parent_span_id for span in spans if span.kind == "consumer" and span.parent_span_id
    }
    problems = []
    for span in spans:
        callee = _peer(span)
        if span.kind == "client" and span.span_id not in with_children:
            problems.append(
                Problem(
                    "broken-hop",
                    f"{span.service} called {callee} ({span.name}) but no span of the callee "
                    "joined the trace: it is not instrumented or dropped traceparent",
                    step,
                    trace_id,
                    (span.service, callee),
                )
            )
        elif span.kind == "producer" and span.span_id not in consumed:
            problems.append(
                Problem(
                    "broken-message-hop",
                    f"{span.service} published to {callee} ({span.name}) but no consumer span "
                    "joined the trace: the hop dropped the message headers",
                    step,
                    trace_id,
                    (span.service, callee),
                )
            )
    return problems


def _orphans(
    step: str, trace_id: str, spans: Sequence[ProbeSpan], probe_span_id: str
) -> list[Problem]:
    ids = {span.span_id for span in spans} | {probe_span_id}
    return [
        Problem(
            "orphan",
            f"{span.service} span {span.name!r} has a parent that never arrived",
            step,
            trace_id,
        )
        for span in spans
        if span.parent_span_id and span.parent_span_id not in ids
    ]


def _outside_parents(
    step: str, trace_id: str, spans: Sequence[ProbeSpan], tolerance_ns: int
) -> list[Problem]:
    by_id = {span.span_id: span for span in spans}
    problems = []
    for span in spans:
        parent = by_id.get(span.parent_span_id or "")
        # A consumer runs after its producer returned, and that is no fault.
        if parent is None or span.kind == "consumer" or parent.kind == "producer":
            continue
        early = parent.start_ns - span.start_ns
        late = span.end_ns - parent.end_ns
        if span.service != parent.service:
            late -= REMOTE_END_LAG_NS
        if early > tolerance_ns or late > tolerance_ns:
            how = (
                f"starts {early / 1e6:.1f} ms before"
                if early > tolerance_ns
                else f"ends {(span.end_ns - parent.end_ns) / 1e6:.1f} ms after"
            )
            problems.append(
                Problem(
                    "outside-parent",
                    f"{span.service} span {span.name!r} {how} its parent "
                    f"{parent.service} {parent.name!r} (clock skew or a span closed late)",
                    step,
                    trace_id,
                    (parent.service, span.service),
                )
            )
    return problems


def _budget(
    step: Step, trace_id: str, entry: ProbeSpan, spans: Sequence[ProbeSpan]
) -> list[Problem]:
    if step.budget_ns is None or entry.duration_ns <= step.budget_ns:
        return []
    others = [span for span in spans if span.service != entry.service]
    slowest = max(others, key=lambda span: span.duration_ns, default=None)
    below = (
        f"; slowest below it: {slowest.service} {slowest.name!r} {slowest.duration_ns / 1e6:.0f} ms"
        if slowest is not None
        else ""
    )
    return [
        Problem(
            "budget",
            f"step {step.name!r} took {entry.duration_ns / 1e6:.0f} ms at {entry.service}, "
            f"over its {step.budget_ns / 1e6:.0f} ms budget{below}",
            step.name,
            trace_id,
            (entry.service, slowest.service) if slowest is not None else None,
        )
    ]


def _entry(spans: Sequence[ProbeSpan], probe_span_id: str) -> ProbeSpan | None:
    """The span the entry point started under the probe's own span, else the earliest
    span whose parent is not in the trace."""
    ids = {span.span_id for span in spans}
    direct = [span for span in spans if span.parent_span_id == probe_span_id]
    roots = direct or [
        span for span in spans if not span.parent_span_id or span.parent_span_id not in ids
    ]
    return min(roots, key=lambda span: span.start_ns, default=None)


def _peer(span: ProbeSpan) -> str:
    for key in _PEER_KEYS:
        value = span.attributes.get(key)
        if isinstance(value, str) and value:
            port = span.attributes.get("server.port")
            if key == "server.address" and port is not None:
                return f"{value}:{port}"
            return value
    return "an unnamed callee"


def _host(url: str) -> str:
    return url.split("/")[2] if url.count("/") >= 2 else url
