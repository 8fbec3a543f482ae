"""Burn rates, budgets and the workbook's rules against figures computed by hand."""

from __future__ import annotations

import pytest

from threadline.server.analysis.burn import (
    BURN_WINDOWS,
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    WORKBOOK_RULES,
    Counts,
    Severity,
    budget,
    burn_rate,
    judge,
    retry_share,
    severities_firing,
)


def test_burn_is_the_error_ratio_over_the_budget() -> None:
    """2 bad of 100 at a 99% objective burns twice the budget: 0.02 / 0.01 = 2."""
    assert burn_rate(Counts(good=98, total=100), 0.99) == pytest.approx(2.0)
    # 30% failing at 99.9%: 0.3 / 0.001 = 300.
    assert burn_rate(Counts(good=70, total=100), 0.999) == pytest.approx(300.0)
    assert burn_rate(Counts(good=0, total=0), 0.99) is None


def test_budget_remaining_counts_down_from_one() -> None:
    """10,000 events at 99% allow 100 bad; 25 bad leave 75% of the budget, 150 overspend it."""
    assert budget(Counts(9975, 10_000), 0.99).remaining == pytest.approx(0.75)
    assert budget(Counts(9850, 10_000), 0.99).remaining == pytest.approx(-0.5)
    assert budget(Counts(0, 0), 0.99).remaining is None


def test_impossible_counts_are_refused() -> None:
    """More good than total events is a bug upstream, not a figure."""
    with pytest.raises(ValueError, match="impossible"):
        Counts(good=5, total=3)


def windows(**per_window: tuple[int, int]) -> dict[int, Counts]:
    lengths = dict(BURN_WINDOWS)
    return {lengths[name.removeprefix("w")]: Counts(*value) for name, value in per_window.items()}


ALL_GOOD = {
    "w5m": (100, 100),
    "w30m": (600, 600),
    "w1h": (1200, 1200),
    "w6h": (7200, 7200),
    "w1d": (28800, 28800),
    "w3d": (86400, 86400),
}


def test_the_fast_page_needs_both_windows() -> None:
    """15% bad at 99% is a burn of 15 ≥ 14.4: it pages when both 1h and 5m burn that fast."""
    counts = windows(**{**ALL_GOOD, "w1h": (1020, 1200), "w5m": (85, 100)})
    verdict = judge(WORKBOOK_RULES[0], counts, 0.99, min_events=10)
    assert verdict.long_burn == pytest.approx(15.0)
    assert verdict.short_burn == pytest.approx(15.0)
    assert verdict.firing
    # The short window recovered (1% bad, burn 1): the page stops even though 1h still burns.
    recovered = windows(**{**ALL_GOOD, "w1h": (1020, 1200), "w5m": (99, 100)})
    assert not judge(WORKBOOK_RULES[0], recovered, 0.99, min_events=10).firing


def test_a_burn_just_under_the_factor_does_not_page() -> None:
    """14% bad at 99% is a burn of 14 < 14.4 on both windows."""
    counts = windows(**{**ALL_GOOD, "w1h": (1032, 1200), "w5m": (86, 100)})
    assert not judge(WORKBOOK_RULES[0], counts, 0.99, min_events=10).firing


def test_slow_page_and_ticket() -> None:
    """6% bad over 6h and 30m pages (burn 6); 1% over 3d and 6h opens a ticket (burn 1)."""
    counts = windows(**{**ALL_GOOD, "w6h": (6768, 7200), "w30m": (564, 600)})
    assert judge(WORKBOOK_RULES[1], counts, 0.99, min_events=10).firing
    ticket = windows(**{**ALL_GOOD, "w3d": (85536, 86400), "w6h": (7128, 7200)})
    verdicts = [judge(rule, ticket, 0.99, min_events=10) for rule in WORKBOOK_RULES]
    firing = severities_firing(verdicts)
    assert firing[Severity.PAGE] is None
    assert firing[Severity.TICKET] is not None
    assert firing[Severity.TICKET].rule.name == "3d"


def test_the_low_traffic_guard_holds_back_a_page_on_few_events() -> None:
    """2 failures in 5 requests is a burn of 40, but 5 events are fewer than the guard's 10."""
    counts = windows(**{**ALL_GOOD, "w1h": (30, 50), "w5m": (3, 5)})
    verdict = judge(WORKBOOK_RULES[0], counts, 0.99, min_events=10)
    assert verdict.short_burn == pytest.approx(40.0)
    assert verdict.guarded
    assert not verdict.firing
    assert judge(WORKBOOK_RULES[0], counts, 0.99, min_events=5).firing


def test_rule_windows_are_the_workbooks() -> None:
    """Long windows 1h, 6h, 3d; short windows 1/12 of them; factors 14.4, 6, 1."""
    assert [(r.long_ns, r.short_ns, r.factor) for r in WORKBOOK_RULES] == [
        (HOUR_NS, 5 * MINUTE_NS, 14.4),
        (6 * HOUR_NS, 30 * MINUTE_NS, 6.0),
        (3 * DAY_NS, 6 * HOUR_NS, 1.0),
    ]
    assert all(r.long_ns == 12 * r.short_ns for r in WORKBOOK_RULES)


def test_retry_share() -> None:
    """3 retried of 12 calls is a share of 0.25; no calls, no share."""
    assert retry_share(3, 12) == pytest.approx(0.25)
    assert retry_share(0, 0) is None
