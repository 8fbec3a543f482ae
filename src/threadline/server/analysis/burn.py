"""Error budgets, burn rates and the multiwindow, multi-burn-rate alert rules.

Pure: counts in, figures and decisions out (no I/O, no clock).

An SLO with objective ``o`` allows a share ``1 − o`` of its events to be bad: its
*error budget*. Over any window, the *burn rate* is how fast that budget is spent::

    burn = (bad / total) / (1 − o)

A burn of 1 spends exactly the budget over the SLO's window; 14.4 spends 2% of a
30-day budget in one hour. The rules are the Google SRE workbook's (chapter 5,
table 5-8): each needs the burn over a long window *and* over a short one (1/12 of
the long) to reach its factor, so an alert fires fast and stops soon after the
problem does::

    page    burn ≥ 14.4 over 1h and 5m    (2% of a 30-day budget in an hour)
    page    burn ≥ 6    over 6h and 30m   (5% in six hours)
    ticket  burn ≥ 1    over 3d and 6h    (10% in three days)

The low-traffic guard: with fewer than ``min_events`` events in a rule's short
window no rule fires, because one failure in three requests is a 33% error ratio
(a burn of 33 for a 99% objective) that says nothing about the service.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

MINUTE_NS: Final = 60_000_000_000
HOUR_NS: Final = 60 * MINUTE_NS
DAY_NS: Final = 24 * HOUR_NS


# Relative slack of ``reaches``: far below any difference a count can make.
_ROUNDING: Final = 1e-9


class Severity(enum.StrEnum):
    PAGE = "page"
    TICKET = "ticket"


# The windows burn rates are reported over (the rules' long and short windows).
BURN_WINDOWS: Final[tuple[tuple[str, int], ...]] = (
    ("5m", 5 * MINUTE_NS),
    ("30m", 30 * MINUTE_NS),
    ("1h", HOUR_NS),
    ("6h", 6 * HOUR_NS),
    ("1d", DAY_NS),
    ("3d", 3 * DAY_NS),
)


@dataclass(frozen=True, slots=True)
class Counts:
    """Events of one window: how many there were and how many were good."""

    good: int
    total: int

    @property
    def bad(self) -> int:
        return self.total - self.good

    def __post_init__(self) -> None:
        if self.total < 0 or not 0 <= self.good <= self.total:
            raise ValueError(f"impossible counts: {self.good} good of {self.total}")


@dataclass(frozen=True, slots=True)
class BurnRule:
    """Alert at ``severity`` when the burn reaches ``factor`` over both windows."""

    name: str
    severity: Severity
    factor: float
    long_ns: int
    short_ns: int


WORKBOOK_RULES: Final[tuple[BurnRule, ...]] = (
    BurnRule("1h", Severity.PAGE, 14.4, HOUR_NS, 5 * MINUTE_NS),
    BurnRule("6h", Severity.PAGE, 6.0, 6 * HOUR_NS, 30 * MINUTE_NS),
    BurnRule("3d", Severity.TICKET, 1.0, 3 * DAY_NS, 6 * HOUR_NS),
)


@dataclass(frozen=True, slots=True)
class Budget:
    """The error budget over the SLO's window."""

    allowed_bad: float  # (1 − objective) × events in the window
    bad: int
    total: int

    @property
    def remaining(self) -> float | None:
        """Share of the budget left (1 = untouched, 0 = spent, below 0 = overspent);
        None with no events (no budget to speak of)."""
        if self.allowed_bad <= 0:
            return None
        return 1.0 - self.bad / self.allowed_bad


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule on one evaluation: whether it fires, and why not if it does not."""

    rule: BurnRule
    long_burn: float | None
    short_burn: float | None
    short_events: int
    guarded: bool  # too few events in the short window to judge

    @property
    def firing(self) -> bool:
        return (
            not self.guarded
            and self.long_burn is not None
            and self.short_burn is not None
            and reaches(self.long_burn, self.rule.factor)
            and reaches(self.short_burn, self.rule.factor)
        )


def reaches(burn: float, factor: float) -> bool:
    """``burn ≥ factor``, allowing for rounding: 6% bad at 99% is a burn of 6 on paper
    and 5.999999999999995 in floating point, and must fire."""
    return burn >= factor * (1.0 - _ROUNDING)


def burn_rate(counts: Counts, objective: float) -> float | None:
    """``(bad / total) / (1 − objective)``; None when the window has no events."""
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective must be between 0 and 1, got {objective}")
    if counts.total == 0:
        return None
    return (counts.bad / counts.total) / (1.0 - objective)


def budget(counts: Counts, objective: float) -> Budget:
    """The budget of the SLO window's ``counts``."""
    return Budget(allowed_bad=(1.0 - objective) * counts.total, bad=counts.bad, total=counts.total)


def judge(
    rule: BurnRule, windows: Mapping[int, Counts], objective: float, min_events: int
) -> RuleVerdict:
    """``rule`` over the counts of its two windows (keyed by window length)."""
    short = windows[rule.short_ns]
    return RuleVerdict(
        rule=rule,
        long_burn=burn_rate(windows[rule.long_ns], objective),
        short_burn=burn_rate(short, objective),
        short_events=short.total,
        guarded=short.total < min_events,
    )


def severities_firing(verdicts: Sequence[RuleVerdict]) -> dict[Severity, RuleVerdict | None]:
    """Per severity, the first firing verdict (None when none of its rules fires)."""
    firing: dict[Severity, RuleVerdict | None] = {severity: None for severity in Severity}
    for verdict in verdicts:
        if verdict.firing and firing[verdict.rule.severity] is None:
            firing[verdict.rule.severity] = verdict
    return firing


def retry_share(retried: int, calls: int) -> float | None:
    """Share of an edge's calls that were retries; None with no calls."""
    if calls <= 0:
        return None
    return min(retried, calls) / calls
