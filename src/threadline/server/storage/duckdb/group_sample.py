"""Who is in which trace group, and which of their traces the counts read (``groups``).

The target's requests (its entry spans in the window, or root spans without a
service; not those of synthetic journeys) label their traces: *focus* when one of
them is at or above the percentile threshold (or failed), *baseline* otherwise.
``Labels`` holds that split and each group's size in requests: from the rollups
(``group_rollups``: the threshold read from the merged latency buckets, counts
summed from them, no span read) or by a scan (``scan_labels``).

The counts then run on a sample of at most ``sample`` traces per group, the same one
every time. Shares and means need a couple of thousand traces to be precise to a few
percent, and the cost then stays flat as the store grows instead of reading every
span of every trace in the window. When the rollups give per-minute counts, the
sample comes from slices of the window spread over it (``analysis.time_slices``): a
hash sample of the whole window puts its traces in every block of the span table, and
the read of their spans then costs the window's traffic. Inside the slices (or the
window, without counts), the sample is the first traces of each group ordered by a
hash of the trace id; the group sizes give a hash cutoff that admits about
``OVERSAMPLE`` times the traces needed, so the target spans are only filtered by it
(no grouping or sorting of all of them).

Failed traces are too rare for slices (each would have to cover most of the window):
when the rollups decide a failed split, the focus traces are the first by hash over the
whole window among the failed traces' spans kept apart (``kept_apart``). So is the
baseline, among the share of all traces kept there, when the share holds enough of it
(a scan of the whole window would draw the same traces); otherwise it comes from
slices that need only hold enough baseline requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import Split, Target, TimeWindow, check_split
from threadline.server.analysis import time_slices
from threadline.server.storage.duckdb import kept_apart
from threadline.server.storage.duckdb.rollups import MINUTE_NS
from threadline.server.storage.duckdb.schema import (
    FAILED_SPANS,
    SLOW_SPANS,
    TABLE,
    TRACE_SUMMARIES,
)
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    ENTRY_PARTS,
    ERROR,
    NO_PARENT,
    USER_TRAFFIC,
    Conditions,
    Fetch,
    Row,
    checked_limit,
    in_window,
    starts_in,
    synthetic,
)


@dataclass(frozen=True, slots=True)
class Labels:
    """How the target's requests split into focus and baseline, and the counts.

    ``focus`` is an SQL condition on one target span with its parameters. The
    rollups decide it without reading spans (``group_rollups``); without them a scan
    does (``scan_labels``). ``*_requests`` count target spans; ``examples`` are
    focus trace ids, worst (slowest) first. ``window`` is what the span reads cover:
    the rollups widen a window to whole minutes, and the sample follows them.
    ``per_minute``: the (focus, baseline) requests of each minute when the rollups
    know them (``time_slices.minute_counts``), so the sample is drawn from slices of the
    window (``analysis.time_slices``); ``None``: from the whole window.
    ``synthetic_free``: the window holds no synthetic request (the rollups said so).
    """

    window: TimeWindow
    threshold_ns: float | None
    focus: str
    focus_params: tuple[object, ...]
    focus_requests: int
    baseline_requests: int
    examples: tuple[str, ...]
    per_minute: Mapping[int, tuple[float, float]] | None = None
    # The rollups say no synthetic request is in the window: reads of the target's
    # spans need not test each span's attributes for the marker.
    synthetic_free: bool = False
    # The focus traces are failed ones, whose spans are also kept apart
    # (``kept_apart``): the focus sample is drawn from there.
    apart: bool = False
    # Every request of the target in the window is a trace's root (the rollups said
    # so): a slow split's focus traces may all be kept apart as slow ones
    # (``kept_apart``), which the draw checks before drawing from there.
    roots: bool = False


# Where a sampled trace's spans are read, the last value of a sampled row: the span
# table, or the copies kept apart (``kept_apart``) of failed and shared traces, or of
# slow ones.
IN_SPANS: Final = 0
IN_FAILED: Final = 1
IN_SLOW: Final = 2
# The table each ``IN_*`` value names.
TABLES: Final = {IN_SPANS: TABLE, IN_FAILED: FAILED_SPANS, IN_SLOW: SLOW_SPANS}

# The hash cutoff admits this many times the traces a group's sample needs, so one
# pass almost always finds enough; when it does not, the cutoff doubles.
OVERSAMPLE: Final = 1.5
_HASH_RANGE: Final = 2**64
# The cutoff that admits no trace (no hash is below it).
_NONE: Final = 0


def scan_labels(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    percentile: float,
    examples: int,
) -> Labels:
    """The split decided by scanning the target's spans: exact percentile threshold."""
    check_split(percentile, examples)
    spans = _target_spans(target, window)
    threshold: float | None = None
    focus_params: tuple[object, ...] = ()
    if split is Split.SLOW:
        rows = fetch(
            f"SELECT quantile_cont(duration_ns, ?) FROM {TABLE}{spans.sql('WHERE')}",
            [percentile / 100, *spans.params],
        )
        threshold = None if rows[0][0] is None else float(rows[0][0])
        # At or above: when the slowest tenth ties (a timeout, a fixed delay), strictly
        # above the interpolated threshold would leave the slow group empty.
        focus, focus_params = "duration_ns >= ?", (threshold if threshold is not None else 0.0,)
    else:
        focus, focus_params = f"status = '{ERROR}'", ()
    sizes = fetch(
        f"SELECT count(*) FILTER (WHERE {focus}), count(*) FILTER (WHERE NOT ({focus}))"
        f" FROM {TABLE}{spans.sql('WHERE')}",
        [*focus_params, *focus_params, *spans.params],
    )[0]
    example_rows = fetch(
        f"SELECT trace_id FROM {TABLE}{spans.sql('WHERE')} GROUP BY trace_id"
        f" HAVING bool_or({focus}) ORDER BY max(duration_ns) DESC, trace_id LIMIT ?",
        [*spans.params, *focus_params, checked_limit(examples, "examples")],
    )
    return Labels(
        window=window,
        threshold_ns=threshold,
        focus=focus,
        focus_params=focus_params,
        focus_requests=int(sizes[0] or 0),
        baseline_requests=int(sizes[1] or 0),
        examples=tuple(row[0] for row in example_rows),
    )


def _cutoff(needed: int, group: float) -> int | None:
    """Hash values below this admit about ``OVERSAMPLE × needed`` of ``group`` traces;
    ``None``: admit all."""
    if group <= 0 or OVERSAMPLE * needed >= group:
        return None
    return int(_HASH_RANGE * OVERSAMPLE * needed / group)


def sample(
    fetch: Fetch, target: Target, labels: Labels, sample: int
) -> tuple[list[Row], Counter[bool]]:
    """The sampled traces (id, focus, place, where) and how many of each group were found.

    With per-minute counts the traces come from slices of the window holding enough
    requests of both groups (``time_slices``); inside the slices, or over the whole
    window without counts, the first traces of each group by hash. When the slices hold
    too few traces (several requests per trace, a minute off its share), they widen.
    When the focus traces' spans are kept apart (``labels.apart``), the focus sample is
    the first failed traces by hash over the whole window, read there, and the slices
    need only hold enough baseline requests; so it is for a slow split whose copies of
    slow traces hold every focus request the labels count. ``where``: the table to read
    the trace's spans from (``IN_SPANS``, ``IN_FAILED``, ``IN_SLOW``).
    """
    if labels.apart:
        focus, _ = _kept(fetch, target, labels, sample, focus=True)
    elif labels.roots and labels.threshold_ns is not None and labels.focus_requests > 0:
        # Slow roots are kept apart too, by a threshold of their own: the copies serve
        # when they hold every focus request the rollups count, and only then.
        focus, requests = _kept(fetch, target, labels, sample, focus=True, copies=IN_SLOW)
        if requests != labels.focus_requests:
            return _drawn(fetch, target, labels, sample, labels.per_minute, drawing_focus=True)
    else:
        return _drawn(fetch, target, labels, sample, labels.per_minute, drawing_focus=True)
    # Fewer requests than the sample in the share: it cannot hold enough traces.
    if labels.baseline_requests >= sample * kept_apart.SHARE:
        shared, _ = _kept(fetch, target, labels, sample, focus=False)
        if len(shared) >= sample:
            return focus + shared, Counter({True: len(focus), False: len(shared)})
    per_minute = labels.per_minute
    if per_minute is not None:
        per_minute = {minute: (0.0, baseline) for minute, (_, baseline) in per_minute.items()}
    baseline, counts = _drawn(fetch, target, labels, sample, per_minute, drawing_focus=False)
    counts[True] = len(focus)
    return focus + baseline, counts


def _drawn(
    fetch: Fetch,
    target: Target,
    labels: Labels,
    sample: int,
    per_minute: Mapping[int, tuple[float, float]] | None,
    *,
    drawing_focus: bool,
) -> tuple[list[Row], Counter[bool]]:
    """The first traces by hash of each group drawn (both, or the baseline alone)
    from the slices ``per_minute`` calls for, or from the whole window."""
    start, end = labels.window.start_ns, labels.window.end_ns
    focus_requests = labels.focus_requests if drawing_focus else None
    if per_minute is None or end <= start:
        parts = _target_parts(target, labels.window, labels.synthetic_free)
        return _first_by_hash(
            fetch, parts, labels, sample, focus_requests, labels.baseline_requests
        )

    def draw(
        runs: list[tuple[int, int]], held: tuple[float, float]
    ) -> tuple[tuple[list[Row], Counter[bool]], tuple[int, int]]:
        parts = _target_parts(target, labels.window, labels.synthetic_free)
        for part in parts:
            part.extend(starts_in([(low, high - 1) for low, high in runs]))
        focus = held[0] if drawing_focus else None
        sampled, counts = _first_by_hash(fetch, parts, labels, sample, focus, held[1])
        return (sampled, counts), (counts.get(True, 0), counts.get(False, 0))

    return time_slices.drawn(start, end, per_minute, MINUTE_NS, sample, draw)


def _kept(
    fetch: Fetch,
    target: Target,
    labels: Labels,
    sample: int,
    *,
    focus: bool,
    copies: int = IN_FAILED,
) -> tuple[list[Row], int]:
    """The first ``sample`` traces of a group by hash among the spans kept apart
    (``kept_apart``: the failed or slow traces for the focus, as ``copies`` says, the
    share for the baseline) and, for traces with summary rows not folded yet, the span
    table (``kept_apart.UNFOLDED``): rows (id, focus, place, where); and, for the
    focus, the focus requests found (a slow split's check that the copies hold them
    all)."""
    parts = _target_parts(target, labels.window, labels.synthetic_free)
    # A baseline trace counts only in the share: the failed traces kept whatever their
    # hash would otherwise crowd it.
    kept = "" if focus else f" AND {kept_apart.IN_SHARE}"
    # A failed focus reads the unfolded traces that fail from the span table; any other
    # group reads every unfolded trace there, so their copies are left out of the count.
    failed = labels.apart and focus
    if not failed:
        kept += " AND trace_id NOT IN (SELECT trace_id FROM unfolded)"
    table = TABLES[copies]
    selects: list[str] = []
    params: list[object] = []
    for part in parts:
        selects.append(
            f"SELECT trace_id, {labels.focus} AS focus FROM {table}{part.sql('WHERE')}{kept}"
        )
        params += [*labels.focus_params, *part.params]
    # Where unfolded traces lie: a trace's unfolded spans start within its fresh rows'
    # range, so zone maps skip the rest of the span table.
    failing = " AND errors > 0" if failed else ""
    low, high = fetch(
        f"SELECT min(start_ns), max(last_start_ns) FROM {TRACE_SUMMARIES} WHERE fresh{failing}",
        [],
    )[0]
    if low is not None:
        unfolded = "unfolded WHERE failing" if failed else "unfolded"
        shared = "" if focus else f" AND {kept_apart.IN_SHARE}"
        for part in parts:
            selects.append(
                f"SELECT trace_id, {labels.focus} AS focus FROM {TABLE}{part.sql('WHERE')}"
                f" AND start_ns BETWEEN ? AND ?{shared}"
                f" AND trace_id IN (SELECT trace_id FROM {unfolded})"
            )
            params += [*labels.focus_params, *part.params, low, high]
    rows = fetch(
        f"""WITH unfolded AS MATERIALIZED ({kept_apart.UNFOLDED}),
candidate AS (
    SELECT trace_id, bool_or(focus) AS focus, count(*) FILTER (WHERE focus) AS requests
    FROM ({" UNION ALL ".join(selects)}) GROUP BY trace_id
)
SELECT trace_id, focus,
       row_number() OVER (ORDER BY hash(trace_id), trace_id) AS place,
       CASE WHEN trace_id IN (SELECT trace_id FROM unfolded) THEN {IN_SPANS}
            ELSE {copies} END AS place_of_spans,
       sum(requests) OVER () AS requests
FROM candidate WHERE {"" if focus else "NOT "}focus QUALIFY place <= ? ORDER BY place""",
        [*params, sample],
    )
    return [row[:4] for row in rows], int(rows[0][4]) if rows else 0


def _first_by_hash(
    fetch: Fetch,
    parts: list[Conditions],
    labels: Labels,
    sample: int,
    focus: float | None,
    baseline: float,
) -> tuple[list[Row], Counter[bool]]:
    """The first ``sample`` traces of each group by hash among the target spans (the
    union of ``parts``); ``focus`` and ``baseline`` requests are there, which sets the
    hash cutoffs. ``focus`` None: the focus group is not drawn here (none is returned)."""
    focus_cutoff = _NONE if focus is None else _cutoff(sample, focus)
    baseline_cutoff = _cutoff(sample, baseline)
    while True:
        chosen, chosen_params = _labelled(parts, labels, focus_cutoff, baseline_cutoff, sample)
        # The sample is found once and handed to the counts as a list: finding it again
        # in each read filtered the target spans as many times more.
        sampled = fetch(
            f"{chosen} SELECT trace_id, focus, place, {IN_SPANS} AS place_of_spans FROM labelled"
            " ORDER BY focus, place",
            chosen_params,
        )
        counts = Counter(bool(row[1]) for row in sampled)
        short_focus = focus_cutoff not in (None, _NONE) and counts.get(True, 0) < sample
        short_baseline = baseline_cutoff is not None and counts.get(False, 0) < sample
        if not short_focus and not short_baseline:
            return sampled, counts
        # Too few traces passed (several requests per trace, or chance): widen the cut.
        if short_focus:
            focus_cutoff = _widened(focus_cutoff)
        if short_baseline:
            baseline_cutoff = _widened(baseline_cutoff)


def _widened(cutoff: int | None) -> int | None:
    if cutoff is None or cutoff * 2 >= _HASH_RANGE:
        return None
    return cutoff * 2


def _below(cutoff: int | None) -> tuple[str, list[object]]:
    if cutoff is None:
        return "true", []
    return "hash(trace_id) < CAST(? AS UBIGINT)", [cutoff]


def _labelled(
    parts: list[Conditions],
    labels: Labels,
    focus_cutoff: int | None,
    baseline_cutoff: int | None,
    sample: int,
) -> tuple[str, list[object]]:
    """The ``labelled`` CTE: the first ``sample`` traces of each group by a hash of their id.

    Which traces come first depends on the id alone, so the sample is the same on
    every call, and the same as ordering every trace of the group by the hash: the
    cutoffs only skip traces that could not be among the first. Focus traces are
    those with a focus span; baseline traces those whose target spans are all
    outside it.
    """
    focus_hash, focus_hash_params = _below(focus_cutoff)
    base_hash, base_hash_params = _below(baseline_cutoff)
    focus = labels.focus
    # One pass over the target spans finds the candidates of both groups. A span passes
    # when it can place its trace in a group: below the baseline cutoff, or focus and
    # below the focus cutoff (a trace is focus when any span is). Focus is rare, so its
    # cutoff is wide: testing the cutoffs alone passed most spans on to the grouping.
    reads = " UNION ALL ".join(
        f"SELECT trace_id, {focus} AS focus FROM {TABLE}{part.sql('WHERE')}"
        f" AND ((({focus}) AND {focus_hash}) OR {base_hash})"
        for part in parts
    )
    sql = f"""WITH candidate AS (
    SELECT trace_id, bool_or(focus) AS focus FROM ({reads}) GROUP BY trace_id
),
labelled AS (
    SELECT * FROM (
        SELECT trace_id, true AS focus,
               row_number() OVER (ORDER BY hash(trace_id), trace_id) AS place
        FROM candidate WHERE focus AND {focus_hash} QUALIFY place <= ?)
    UNION ALL
    SELECT * FROM (
        SELECT trace_id, false AS focus,
               row_number() OVER (ORDER BY hash(trace_id), trace_id) AS place
        FROM candidate WHERE NOT focus AND {base_hash} QUALIFY place <= ?)
)"""
    params: list[object] = []
    for part in parts:
        params += [*labels.focus_params, *part.params, *labels.focus_params]
        params += [*focus_hash_params, *base_hash_params]
    params += [
        *focus_hash_params,
        sample,
        *base_hash_params,
        sample,
    ]
    return sql, params


def _target_spans(
    target: Target, window: TimeWindow, entry: str = ENTRY, synthetic_free: bool = False
) -> Conditions:
    """The requests of ``target``: its entry spans, or root spans without a service.

    Synthetic journeys' requests are neither slow nor failed users' requests nor part
    of their baseline: a failing drill must not become the "errors" group's cause.
    Testing for their marker reads every span's attributes, the dearest part of a
    whole-trace sample's read; ``synthetic_free`` says the window holds none.
    """
    where = in_window(window)
    if not synthetic_free:
        where.add(f"NOT {synthetic()}")
    if target.service is None:
        where.add(f"{NO_PARENT} AND {USER_TRAFFIC}")
        return where
    where.add(entry)
    where.add("service_name = ?", target.service)
    if target.operation is not None:
        where.add("name = ?", target.operation)
    return where


def focus_requests(target: Target, labels: Labels) -> Conditions:
    """The target's requests in the labelled window that meet the focus condition: a
    trace holding one is a focus trace, whichever of its requests a slice read."""
    where = _target_spans(target, labels.window, synthetic_free=labels.synthetic_free)
    where.add(labels.focus, *labels.focus_params)
    return where


def _target_parts(
    target: Target, window: TimeWindow, synthetic_free: bool = False
) -> list[Conditions]:
    """``_target_spans`` as disjoint parts to read one after the other (``ENTRY_PARTS``)."""
    if target.service is None:
        return [_target_spans(target, window, synthetic_free=synthetic_free)]
    return [_target_spans(target, window, entry, synthetic_free) for entry in ENTRY_PARTS]
