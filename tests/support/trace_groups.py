"""Trace groups built by hand, for the rankings' tests: a checkout's slow split."""

from __future__ import annotations

from support.times import MS
from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)


def slow_split(
    operations: tuple[OperationPresence, ...] = (),
    attributes: tuple[AttributeCount, ...] = (),
    *,
    focus: int = 10,
    baseline: int = 90,
    sampled: int | None = None,
) -> TraceGroups:
    """The checkout's slow (``focus``) and other (``baseline``) traces holding ``operations``
    and ``attributes``, counted over ``sampled`` traces of each group (every one: None)."""
    return TraceGroups(
        target=Target("gateway", "POST /checkout"),
        split=Split.SLOW,
        window=TimeWindow(0, 3600 * 10**9),
        threshold_ns=400 * MS,
        focus_traces=focus,
        baseline_traces=baseline,
        focus_sample=focus if sampled is None else min(sampled, focus),
        baseline_sample=baseline if sampled is None else min(sampled, baseline),
        operations=operations,
        attributes=attributes,
        examples=(),
    )
