"""Why some requests are slow (or fail): what their traces have that the others lack.

The store splits an operation's traces into a *focus* group (slower than a
percentile threshold, or failed) and a *baseline* (the rest), and counts what each
group holds (``aggregates.TraceGroups``). This module ranks the differences:

- **where the time grows**: per (service, operation), the mean time per trace
  spent in it — self time (the store's exact SQL), or time on the critical path
  of the request (``request_paths``) when path totals from a sample of traces are
  given — in the focus group minus the baseline. A trace without the operation
  counts as zero, so an operation that only slow traces run ranks by its whole
  time. Largest growth first;
- **where errors start**: per (service, operation), the share of traces in which
  it is an error *origin* (an error span none of whose children failed), in the
  focus group minus the baseline;
- **which attribute values go with it**: per ``key=value`` (span or resource
  attribute on any span of the trace), the share of focus traces carrying it
  against the share of baseline traces, with the lift (ratio of the shares), the
  *score* (difference of the shares) and Fisher's exact p-value. Only values that
  are signal are listed (``attribute_signal``): never identifiers or ephemeral
  ports, only with enough support (a count and a share of the focus group), only
  when the difference is unlikely by chance; per-user and per-session values are
  summarised as a *concentration* ("concentrated in 3 users").

Listed values are ranked by lift: how many times more common the value is on
focus traces than on the rest. Every listed value already explains a real part
of the focus group (the support floor) and is unlikely a fluke (the test), so what sets
them apart is how strongly each goes with slowness: a provider carried by 15% of
a service's slow requests and almost none of the rest (×70) is the cause to show
first, ahead of the route that 38% of slow requests and 12% of the others share
(×3), which a difference of shares would rank first. The lift is smoothed
(add-one) so it stays finite when the baseline never carries the value. Values on
exactly as many focus and baseline traces as a listed one (the route, target and
URL of one call) are folded into it as ``alike`` instead of filling the list. Times
and error origins rank only positive differences: what goes *with* the focus group.

Every ranked figure comes with its 95% margin from the samples it was counted on,
and a row whose figure the sample cannot tell apart from the row above is marked
``tied`` (``sampling_error``): its place is the sample's chance, so a count over every
trace may swap the two. A group counted whole has no margin and no ties.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from threadline.server.aggregates import AttributeCount, TraceGroups
from threadline.server.analysis import attribute_signal, sampling_error
from threadline.server.analysis.request_paths import PathTotals, Sums

Measure = Literal["self_time", "critical_path"]

# Least focus traces a value must be on to be listed: fewer is an anecdote.
MIN_SUPPORT: Final = 5


@dataclass(frozen=True, slots=True)
class TimeGrowth:
    """Mean time per trace in one operation, focus against baseline.

    The ``*_self_ns`` means are over the store's sample of each group; the
    ``*_path_ns`` means over the critical-path sample, ``None`` without one.
    ``margin_ns``: the 95% margin of ``growth_ns`` from those samples
    (``sampling_error``); ``tied``: it cannot be told apart from the growth of the row
    ranked above at this sample's size.
    """

    service: str
    operation: str
    focus_traces: int
    baseline_traces: int
    focus_self_ns: float
    baseline_self_ns: float
    focus_path_ns: float | None
    baseline_path_ns: float | None
    measure: Measure
    margin_ns: float = 0.0
    tied: bool = False

    @property
    def growth_ns(self) -> float:
        """Focus mean minus baseline mean, in the ranking measure."""
        if self.measure == "critical_path":
            return (self.focus_path_ns or 0.0) - (self.baseline_path_ns or 0.0)
        return self.focus_self_ns - self.baseline_self_ns


@dataclass(frozen=True, slots=True)
class ErrorSource:
    """An operation where errors start, and how much more often in the focus group.

    ``margin``: the 95% margin of ``score`` from the samples; ``tied``: as for
    ``TimeGrowth``."""

    service: str
    operation: str
    focus_traces: int
    baseline_traces: int
    focus_share: float
    baseline_share: float
    margin: float = 0.0
    tied: bool = False

    @property
    def score(self) -> float:
        return self.focus_share - self.baseline_share


@dataclass(frozen=True, slots=True)
class AttributeLift:
    """An attribute value and how much more often focus traces carry it.

    ``p_value``: one-sided Fisher's exact test of a focus share this much larger by
    chance (``attribute_signal.fisher_greater``). ``log_lift_margin``: the 95% margin
    of the lift's logarithm from the samples (``lift_low``, ``lift_high``); ``tied``:
    the lift cannot be told apart from the row ranked above at this sample's size.
    """

    key: str
    value: str
    focus_traces: int
    baseline_traces: int
    focus_share: float
    baseline_share: float
    lift: float
    p_value: float = 1.0
    # Other (key, value)s on exactly as many focus and baseline traces, shown once
    # with this one: the route, target and URL of one call travel together.
    alike: tuple[tuple[str, str], ...] = ()
    log_lift_margin: float = 0.0
    tied: bool = False

    @property
    def score(self) -> float:
        return self.focus_share - self.baseline_share

    @property
    def lift_low(self) -> float:
        return self.lift * math.exp(-self.log_lift_margin)

    @property
    def lift_high(self) -> float:
        return self.lift * math.exp(self.log_lift_margin)


@dataclass(frozen=True, slots=True)
class Concentration:
    """Focus traces gathered on a few people: the significant values of a per-person key.

    ``values`` are those values, most focus traces first; ``noun`` names them
    ("users", "sessions"). ``*_traces`` count the traces carrying any of them.
    """

    key: str
    noun: str
    values: tuple[str, ...]
    focus_traces: int
    baseline_traces: int
    focus_share: float
    baseline_share: float


@dataclass(frozen=True, slots=True)
class UnrankedKey:
    """An attribute key whose values are never ranked, and why (``attribute_signal``)."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class AttributeSignal:
    """The attribute values that go with the focus group, and what was left out as noise."""

    values: tuple[AttributeLift, ...]
    concentrations: tuple[Concentration, ...]
    unranked: tuple[UnrankedKey, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The ranked differences between a target's focus traces and the rest."""

    groups: TraceGroups
    measure: Measure
    time_growth: tuple[TimeGrowth, ...]
    error_sources: tuple[ErrorSource, ...]
    attributes: tuple[AttributeLift, ...]
    concentrations: tuple[Concentration, ...] = ()
    unranked: tuple[UnrankedKey, ...] = ()
    # Traces of each group (focus, baseline) whose critical paths the times come from;
    # None when the times are self times over the whole sample.
    walked: tuple[int, int] | None = None


def explain(
    groups: TraceGroups,
    *,
    path_totals: PathTotals | None = None,
    min_support: int = MIN_SUPPORT,
    limit: int = 10,
) -> Explanation:
    """Every ranking of this module over ``groups``, each cut to ``limit`` rows."""
    measure: Measure = "critical_path" if path_totals is not None else "self_time"
    signal = attribute_values(groups, min_support=min_support)
    return Explanation(
        groups=groups,
        measure=measure,
        time_growth=rank_time_growth(groups, path_totals)[:limit],
        error_sources=rank_error_sources(groups)[:limit],
        attributes=signal.values[:limit],
        concentrations=signal.concentrations[:limit],
        unranked=signal.unranked,
        walked=None
        if path_totals is None
        else (path_totals.focus_traces, path_totals.baseline_traces),
    )


def rank_time_growth(
    groups: TraceGroups, path_totals: PathTotals | None = None
) -> tuple[TimeGrowth, ...]:
    """Operations whose mean time per trace is larger in the focus group, largest first."""
    measure: Measure = "critical_path" if path_totals is not None else "self_time"
    rows: list[TimeGrowth] = []
    for op in groups.operations:
        focus_path = baseline_path = None
        if path_totals is None:
            focus: Sums = (op.focus_self_ns, op.focus_self_squares, groups.focus_sample)
            baseline: Sums = (op.baseline_self_ns, op.baseline_self_squares, groups.baseline_sample)
        else:
            focus, baseline = path_totals.sums((op.service, op.operation))
            focus_path, baseline_path = _mean(focus[0], focus[2]), _mean(baseline[0], baseline[2])
        margin = _growth_margin(groups, focus, baseline)
        rows.append(
            TimeGrowth(
                service=op.service,
                operation=op.operation,
                focus_traces=op.focus_traces,
                baseline_traces=op.baseline_traces,
                focus_self_ns=_mean(op.focus_self_ns, groups.focus_sample),
                baseline_self_ns=_mean(op.baseline_self_ns, groups.baseline_sample),
                focus_path_ns=focus_path,
                baseline_path_ns=baseline_path,
                measure=measure,
                margin_ns=margin,
            )
        )
    growing = [row for row in rows if row.growth_ns > 0]
    growing.sort(key=lambda row: (-row.growth_ns, row.service, row.operation))
    return _ties_marked(growing, lambda row: (row.growth_ns, row.margin_ns))


def _growth_margin(groups: TraceGroups, focus: Sums, baseline: Sums) -> float:
    """The margin of a growth of means, from each group's sampled total, sum of squares
    and traces counted."""
    return sampling_error.combined(
        sampling_error.mean_margin(*focus, groups.focus_traces),
        sampling_error.mean_margin(*baseline, groups.baseline_traces),
    )


_Ranked = TypeVar("_Ranked", TimeGrowth, ErrorSource, AttributeLift)


def _ties_marked(
    rows: Sequence[_Ranked], figure: Callable[[_Ranked], tuple[float, float]]
) -> tuple[_Ranked, ...]:
    """``rows`` (ranked) with each one the sample cannot tell apart from the row above
    marked ``tied``; ``figure``: a row's ranked figure and its margin."""
    marked = list(rows)
    for place in range(1, len(marked)):
        above, below = figure(marked[place - 1]), figure(marked[place])
        if not sampling_error.apart(*above, *below):
            marked[place] = dataclasses.replace(marked[place], tied=True)
    return tuple(marked)


def rank_error_sources(groups: TraceGroups) -> tuple[ErrorSource, ...]:
    """Operations that are error origins more often in the focus group, largest difference first."""
    rows = [
        ErrorSource(
            service=op.service,
            operation=op.operation,
            focus_traces=op.focus_error_traces,
            baseline_traces=op.baseline_error_traces,
            focus_share=_share(op.focus_error_traces, groups.focus_sample),
            baseline_share=_share(op.baseline_error_traces, groups.baseline_sample),
            margin=sampling_error.combined(
                sampling_error.share_margin(
                    op.focus_error_traces, groups.focus_sample, groups.focus_traces
                ),
                sampling_error.share_margin(
                    op.baseline_error_traces, groups.baseline_sample, groups.baseline_traces
                ),
            ),
        )
        for op in groups.operations
        if op.focus_error_traces
    ]
    rows = [row for row in rows if row.score > 0]
    rows.sort(key=lambda row: (-row.score, -row.focus_traces, row.service, row.operation))
    return _ties_marked(rows, lambda row: (row.score, row.margin))


def rank_attributes(
    groups: TraceGroups, *, min_support: int = MIN_SUPPORT
) -> tuple[AttributeLift, ...]:
    """Attribute values that go with the focus group, strongest lift first."""
    return attribute_values(groups, min_support=min_support).values


def attribute_values(groups: TraceGroups, *, min_support: int = MIN_SUPPORT) -> AttributeSignal:
    """The signal among ``groups.attributes``: listed values, concentrations, keys left out.

    Identifier keys are left out; the rest must reach ``min_support`` focus traces
    (and, except per-person values, ``attribute_signal.MIN_FOCUS_SHARE`` of the
    focus sample), be over-represented, and pass Fisher's test among all the values
    tested (``attribute_signal.discoveries``). Per-person values that pass are
    summarised per key.
    """
    focus_n, baseline_n = groups.focus_sample, groups.baseline_sample
    unranked: dict[str, str] = {}
    candidates: list[AttributeCount] = []
    for count in groups.attributes:
        reason = attribute_signal.noise_reason(count.key, count.key_values, count.key_traces)
        if reason is not None:
            unranked.setdefault(count.key, reason)
            continue
        per_person = count.key in attribute_signal.PER_PERSON_KEYS
        if count.focus_traces < min_support:
            continue
        if not per_person and not attribute_signal.supported(
            count.focus_traces, focus_n, min_support
        ):
            continue
        if _share(count.focus_traces, focus_n) <= _share(count.baseline_traces, baseline_n):
            continue
        candidates.append(count)

    p_values = [
        attribute_signal.fisher_greater(
            min(count.focus_traces, focus_n),
            focus_n,
            min(count.baseline_traces, baseline_n),
            baseline_n,
        )
        for count in candidates
    ]
    values: list[AttributeLift] = []
    people: dict[str, list[AttributeLift]] = defaultdict(list)
    found = attribute_signal.discoveries(p_values)
    for count, p_value, discovered in zip(candidates, p_values, found, strict=True):
        if not discovered:
            continue
        row = AttributeLift(
            key=count.key,
            value=count.value,
            focus_traces=count.focus_traces,
            baseline_traces=count.baseline_traces,
            focus_share=_share(count.focus_traces, focus_n),
            baseline_share=_share(count.baseline_traces, baseline_n),
            # Add-one smoothing: finite when the baseline never carries the value.
            lift=((count.focus_traces + 1) / (focus_n + 2))
            / ((count.baseline_traces + 1) / (baseline_n + 2)),
            p_value=p_value,
            log_lift_margin=sampling_error.combined(
                sampling_error.log_share_margin(count.focus_traces, focus_n, groups.focus_traces),
                sampling_error.log_share_margin(
                    count.baseline_traces, baseline_n, groups.baseline_traces
                ),
            ),
        )
        if count.key in attribute_signal.PER_PERSON_KEYS:
            people[count.key].append(row)
        else:
            values.append(row)
    values.sort(key=lambda row: (-row.lift, -row.score, row.key, row.value))
    ranked = _ties_marked(
        _fold_alike(values), lambda row: (math.log(row.lift), row.log_lift_margin)
    )
    concentrations = [
        concentration
        for key, rows in people.items()
        if (concentration := _concentration(key, rows, focus_n, baseline_n)) is not None
    ]
    concentrations.sort(key=lambda c: (-c.focus_share, c.key))
    return AttributeSignal(
        values=ranked,
        concentrations=tuple(concentrations),
        unranked=tuple(UnrankedKey(key, reason) for key, reason in sorted(unranked.items())),
    )


def _fold_alike(rows: list[AttributeLift]) -> list[AttributeLift]:
    """``rows`` with each value on the same trace counts as an earlier one folded into it."""
    leaders: dict[tuple[int, int], int] = {}
    folded: list[AttributeLift] = []
    alike: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        counts = (row.focus_traces, row.baseline_traces)
        at = leaders.get(counts)
        if at is None:
            leaders[counts] = len(folded)
            folded.append(row)
        else:
            alike[at].append((row.key, row.value))
    return [
        dataclasses.replace(row, alike=tuple(alike[index])) if index in alike else row
        for index, row in enumerate(folded)
    ]


def _concentration(
    key: str, rows: list[AttributeLift], focus_n: int, baseline_n: int
) -> Concentration | None:
    rows = sorted(rows, key=lambda row: (-row.focus_traces, row.value))
    # One trace normally carries one user (one session): the sums count traces.
    focus = min(focus_n, sum(row.focus_traces for row in rows))
    baseline = min(baseline_n, sum(row.baseline_traces for row in rows))
    if focus < attribute_signal.MIN_FOCUS_SHARE * focus_n:
        return None
    return Concentration(
        key=key,
        noun=attribute_signal.PER_PERSON_KEYS[key],
        values=tuple(row.value for row in rows),
        focus_traces=focus,
        baseline_traces=baseline,
        focus_share=_share(focus, focus_n),
        baseline_share=_share(baseline, baseline_n),
    )


def _mean(total: float, traces: int) -> float:
    return total / traces if traces else 0.0


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
