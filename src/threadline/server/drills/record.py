"""One drill run as the store keeps it: when, how long, passed or not, and why not.

Plain values the store returns and the API and UI serve; ``of_run`` builds one from
the probing runner's ``ProbeRun``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from threadline.probing.runner import ProbeRun
from threadline.probing.verdict import Problem, render

# Checks that mean the trace context was lost between two services.
PROPAGATION: Final = frozenset({"broken-hop", "broken-message-hop", "orphan"})


@dataclass(frozen=True, slots=True)
class DrillProblem:
    """One problem the verdict found (``verdict.Problem`` as stored)."""

    check: str
    message: str
    step: str | None = None
    trace_id: str | None = None
    between: tuple[str, str] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "message": self.message,
            "step": self.step,
            "trace_id": self.trace_id,
            "between": list(self.between) if self.between else None,
        }

    @staticmethod
    def from_json(item: dict[str, object]) -> DrillProblem:
        """The problem ``to_json`` wrote."""
        between = item.get("between")
        step, trace_id = item.get("step"), item.get("trace_id")
        return DrillProblem(
            check=str(item["check"]),
            message=str(item["message"]),
            step=None if step is None else str(step),
            trace_id=None if trace_id is None else str(trace_id),
            between=(str(between[0]), str(between[1])) if isinstance(between, list) else None,
        )


@dataclass(frozen=True, slots=True)
class DrillResult:
    """One run of probe ``probe`` that started at ``started_ns`` (Unix ns).

    ``verdict`` is the verdict as a person reads it (``probing.verdict.render``);
    ``trace_id`` is the trace of the first problem that names one (None when it
    passed, or when no problem names a trace).
    """

    probe: str
    started_ns: int
    duration_ns: int
    passed: bool
    journey_id: str
    trace_ids: tuple[str, ...]
    services: tuple[str, ...]
    problems: tuple[DrillProblem, ...]
    verdict: str

    @property
    def trace_id(self) -> str | None:
        return next((p.trace_id for p in self.problems if p.trace_id), None)

    @property
    def main_problem(self) -> DrillProblem | None:
        """The first broken propagation, else the first problem; None when it passed."""
        first = next((p for p in self.problems if p.check in PROPAGATION), None)
        return first or (self.problems[0] if self.problems else None)

    @property
    def summary(self) -> str:
        """``main_problem`` in one line; "" when it passed."""
        main = self.main_problem
        return "" if main is None else headline(main)


def headline(problem: DrillProblem) -> str:
    """A problem as an alert's first line says it."""
    if problem.check in PROPAGATION and problem.between:
        return f"propagation broken between {problem.between[0]} and {problem.between[1]}"
    if problem.check == "budget" and problem.step:
        return f"step {problem.step!r} over its latency budget"
    if problem.check == "missing-trace" and problem.step:
        return f"no trace of step {problem.step!r} arrived"
    return problem.message


def of_run(
    name: str,
    run: ProbeRun,
    *,
    started_ns: int,
    duration_ns: int,
    trace_url: Callable[[str], str],
) -> DrillResult:
    """The result of ``run`` of the probe called ``name``."""
    verdict = run.verdict
    return DrillResult(
        probe=name,
        started_ns=started_ns,
        duration_ns=duration_ns,
        passed=verdict.passed,
        journey_id=run.journey_id,
        trace_ids=verdict.trace_ids,
        services=verdict.services,
        problems=tuple(_problem(p) for p in verdict.problems),
        verdict="\n".join(render(verdict, trace_url)),
    )


def _problem(problem: Problem) -> DrillProblem:
    return DrillProblem(
        check=problem.check,
        message=problem.message,
        step=problem.step,
        trace_id=problem.trace_id,
        between=problem.between,
    )
