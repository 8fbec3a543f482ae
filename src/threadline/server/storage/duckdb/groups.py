"""Trace groups in DuckDB: a target's traces split in two and what each group holds.

The target's entry spans in the window (not those of synthetic journeys) label their
traces: *focus* when one of
them is at or above the percentile threshold (or failed), *baseline* otherwise.
Over every span of those traces (but the SDK's own reports, in no fleet view) the
store then counts, per group:

- per (service, operation): traces holding it, total self time, traces where it
  is an error origin. Self time is exact, as ``analysis.tree`` computes it: a
  window function walks each parent's children by start time, and a child adds
  only the part of its (clipped) interval beyond the latest end seen so far —
  the length of the union of the children's intervals;
- per attribute ``key=value`` (span and resource attributes, via ``json_each``):
  the traces carrying it, and per key the distinct values and the traces carrying
  the key (so analysis can tell an identifier from a property). Values on fewer
  than ``min_support`` focus traces are dropped in SQL: identifiers (message ids,
  order numbers) would otherwise return one row per trace and explain nothing.

Which requests are focus, and how many of each group there are, is decided first
(``Labels``): from the rollups (``group_rollups``: the threshold read from the
merged latency buckets, counts summed from them, no span read) or by a scan
(``scan_labels``). Group sizes count requests (target spans); for whole traces
(no service) that is a root span per trace.

Both counts then run on a sample of at most ``sample`` traces per group, the same
one every time. Shares and means need a couple of thousand traces to be precise to a
few percent, and the cost then stays flat as the store grows instead of reading every
span of every trace in the window. When the rollups give per-minute counts, the sample
comes from slices of the window spread over it (``analysis.time_slices``): a hash
sample of the whole window puts its traces in every block of the span table, and the
read of their spans then costs the window's traffic. Inside the slices (or the window,
without counts), the sample is the first traces of each group ordered by a hash of the
trace id; the group sizes give a hash cutoff that admits about ``OVERSAMPLE`` times
the traces needed, so the target spans are only filtered by it (no grouping or sorting
of all of them). A sampled trace's spans are read where its summary says they start
(within ``PAIR_HORIZON_NS`` of the window), so zone maps skip the rest.
The sample is found once and its trace ids handed to the counts as a list: each
count finding it again filtered the target spans twice more. Both counts are one
statement over one read of the sampled traces' spans (``_SPANS_READ``): that read
filters every span of the traces' ranges by trace id, and a second one cost about as
much again. The same read returns the whole spans of the sample's first traces
(``sample_ids`` a group), which critical paths walk: read again on their own, they
were the same row groups a second time.

The ranking itself is pure analysis (``analysis/tail_latency.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import (
    AttributeCount,
    OperationPresence,
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.analysis import time_slices
from threadline.server.batch import COLUMNS, record_from_row
from threadline.server.storage.duckdb.rollups import MINUTE_NS, PAIR_HORIZON_NS
from threadline.server.storage.duckdb.schema import TABLE
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

# Where the spans of the given traces start within a range: a few ranges (their
# summaries say), or ``None`` when that is not known for all of them.
SpanRanges = Callable[[Fetch, Sequence[str], tuple[int, int]], list[tuple[int, int]] | None]

# The span columns the counts read.
_COUNTED: Final = (
    "trace_id", "span_id", "parent_span_id", "service_name", "name", "start_ns", "end_ns",
    "status", "attributes", "resource",
)  # fmt: skip
# The spans of the labelled traces, read once for both counts below: the read filters
# every span of their ranges by trace id, and the attribute documents cost little more
# to carry along than a second read would (``labelled`` is defined before it).
_SPANS_READ: Final = f"""
spans_read AS MATERIALIZED (
    SELECT s.rowid AS row, {", ".join(f"s.{column}" for column in _COUNTED)},
           l.focus, l.place{{whole}}
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE {{starts}} AND s.{USER_TRAFFIC}
)"""
# The span columns the counts do not read, read too when the whole spans of the first
# sampled traces are returned (``SAMPLE_SPANS``).
_REST: Final = tuple(column for column in COLUMNS if column not in _COUNTED)

# Per-span self time and "error origin" (an error span with no failing child),
# for every span of the labelled traces. Once a child has found its parent by id, the
# parent is named by its row (``rowid``, unique in the read's snapshot): partitioning,
# grouping and joining on one integer costs less than on two id strings.
_OPERATIONS: Final = f"""
child AS (
    SELECT p.row AS parent_row, c.status = '{ERROR}' AS failed,
           greatest(c.start_ns, p.start_ns) AS clipped_start,
           least(c.end_ns, p.end_ns) AS clipped_end
    FROM spans_read AS c JOIN spans_read AS p
      ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
),
ordered AS (
    SELECT *, max(clipped_end) OVER (
        PARTITION BY parent_row ORDER BY clipped_start, clipped_end
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered_until
    FROM child
),
covered AS (
    SELECT parent_row,
           sum(greatest(0, clipped_end - greatest(clipped_start,
                                                  coalesce(covered_until, clipped_start))))
               AS covered_ns,
           bool_or(failed) AS child_failed
    FROM ordered GROUP BY parent_row
),
per_trace AS (
    SELECT m.trace_id, m.focus, m.service_name, m.name,
           sum(greatest(0, m.end_ns - m.start_ns - coalesce(cv.covered_ns, 0))) AS self_ns,
           bool_or(m.status = '{ERROR}' AND NOT coalesce(cv.child_failed, false)) AS origin
    FROM spans_read AS m LEFT JOIN covered AS cv
      ON cv.parent_row = m.row
    GROUP BY m.trace_id, m.focus, m.service_name, m.name
),
operation_rows AS (
    SELECT service_name, name,
           count(*) FILTER (WHERE focus) AS focus_traces,
           count(*) FILTER (WHERE NOT focus) AS baseline_traces,
           coalesce(sum(self_ns) FILTER (WHERE focus), 0) AS focus_self_ns,
           coalesce(sum(self_ns) FILTER (WHERE NOT focus), 0) AS baseline_self_ns,
           count(*) FILTER (WHERE focus AND origin) AS focus_origins,
           count(*) FILTER (WHERE NOT focus AND origin) AS baseline_origins
    FROM per_trace
    GROUP BY service_name, name
)"""

# Traces of each group carrying each attribute value; ``?``: min support, limit.
_ATTRIBUTES: Final = """
pair AS (
    SELECT m.trace_id, m.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM spans_read AS m, json_each(m.attributes) AS e
    UNION
    SELECT m.trace_id, m.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM spans_read AS m, json_each(m.resource) AS e
),
key_stats AS (
    SELECT key, count(DISTINCT value) AS key_values, count(DISTINCT trace_id) AS key_traces
    FROM pair WHERE value IS NOT NULL GROUP BY key
),
attribute_rows AS (
    SELECT pair.key, pair.value, count(*) FILTER (WHERE focus) AS focus_traces,
           count(*) FILTER (WHERE NOT focus) AS baseline_traces,
           any_value(key_stats.key_values) AS key_values,
           any_value(key_stats.key_traces) AS key_traces
    FROM pair JOIN key_stats ON pair.key = key_stats.key
    WHERE pair.value IS NOT NULL
    GROUP BY pair.key, pair.value
    HAVING count(*) FILTER (WHERE focus) >= ?
    ORDER BY focus_traces DESC, pair.key, pair.value
    LIMIT ?
)"""

# Rows of the counts' statement, told apart by its first column.
_OPERATION_ROW: Final = 0
_ATTRIBUTE_ROW: Final = 1
_SPAN_ROW: Final = 2
_COUNT_COLUMNS: Final = 9

# Both counts in one statement, a row each; ``{starts}``: where the sampled traces'
# spans start (``starts_in``); ``{whole}``, ``{pad}`` and ``{spans}``: the whole spans of
# the first sampled traces (``SAMPLE_SPANS``) after the count rows' columns, or nothing.
_COUNTS: Final = f"""{_SPANS_READ}, {_OPERATIONS}, {_ATTRIBUTES}
SELECT {_OPERATION_ROW}, service_name, name, focus_traces, baseline_traces, focus_self_ns,
       baseline_self_ns, focus_origins, baseline_origins{{pad}}
FROM operation_rows
UNION ALL
SELECT {_ATTRIBUTE_ROW}, key, value, focus_traces, baseline_traces, key_values, key_traces,
       NULL, NULL{{pad}}
FROM attribute_rows{{spans}}"""

# The whole spans of the traces placed up to ``?`` in their group's sample, after the
# count rows' columns: analyses that walk whole traces (critical paths) get them from
# the read the counts make, not from a second read of the same row groups.
SAMPLE_SPANS: Final = f"""
UNION ALL
SELECT {_SPAN_ROW}, {", ".join(["NULL"] * (_COUNT_COLUMNS - 1))}, {", ".join(COLUMNS)}
FROM spans_read WHERE place <= ?"""


@dataclass(frozen=True, slots=True)
class Labels:
    """How the target's requests split into focus and baseline, and the counts.

    ``focus`` is an SQL condition on one target span with its parameters. The
    rollups decide it without reading spans (``group_rollups``); without them a scan
    does (``scan_labels``). ``*_requests`` count target spans; ``examples`` are
    focus trace ids, worst (slowest) first. ``window`` is what the span reads cover:
    the rollups widen a window to whole minutes, and the sample follows them.
    ``per_minute``: the (focus, baseline) requests of each minute when the rollups
    know them (focus slightly overcounted), so the sample is drawn from slices of the
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
    per_minute: Mapping[int, tuple[int, int]] | None = None
    # The rollups say no synthetic request is in the window: reads of the target's
    # spans need not test each span's attributes for the marker.
    synthetic_free: bool = False


# The hash cutoff admits this many times the traces a group's sample needs, so one
# pass almost always finds enough; when it does not, the cutoff doubles.
OVERSAMPLE: Final = 1.5
_HASH_RANGE: Final = 2**64


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
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
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


def trace_groups(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    labels: Labels,
    min_support: int,
    max_attributes: int,
    sample: int,
    sample_ids: int = 0,
    span_ranges: SpanRanges | None = None,
) -> TraceGroups:
    """Count what the sampled traces of each group hold; ``labels`` say who is in which.

    ``span_ranges`` says where the spans of given traces start (their summaries); without
    it the sampled traces' spans are looked for within the horizon around the window.
    """
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    checked_limit(sample, "sample")
    sampled, counts = _sample(fetch, target, labels, sample)
    labelled = (
        "WITH labelled AS (SELECT unnest(?::VARCHAR[]) AS trace_id,"
        " unnest(?::BOOLEAN[]) AS focus, unnest(?::BIGINT[]) AS place)"
    )
    ids = [row[0] for row in sampled]
    params: list[object] = [ids, [bool(row[1]) for row in sampled]]
    params.append([int(row[2]) for row in sampled])
    # Spans of the sampled traces are read within the horizon around the window, and
    # where their summaries say they lie: zone maps skip the rest.
    horizon = (labels.window.start_ns - PAIR_HORIZON_NS, labels.window.end_ns + PAIR_HORIZON_NS)
    ranges = None if span_ranges is None else span_ranges(fetch, ids, horizon)
    where = [horizon] if ranges is None else time_slices.within(ranges, horizon)
    reads = starts_in(where, "s.start_ns")
    whole, pad, spans, spans_params = "", "", "", list[object]()
    if sample_ids > 0:
        whole = "".join(f", s.{column}" for column in _REST)
        pad = ", NULL" * len(COLUMNS)
        spans, spans_params = SAMPLE_SPANS, [sample_ids]
    starts = " AND ".join(reads.fragments)
    statement = _COUNTS.format(starts=starts, whole=whole, pad=pad, spans=spans)
    rows = fetch(
        f"{labelled}, {statement}",
        [
            *params,
            *reads.params,
            min_support,
            checked_limit(max_attributes, "max_attributes"),
            *spans_params,
        ],
    )
    kinds: dict[int, list[Row]] = {_OPERATION_ROW: [], _ATTRIBUTE_ROW: [], _SPAN_ROW: []}
    for row in rows:
        kinds[row[0]].append(row)
    operation_rows = sorted(
        (row[1:_COUNT_COLUMNS] for row in kinds[_OPERATION_ROW]), key=lambda row: row[:2]
    )
    # As the statement's own ``ORDER BY``: most focus traces first, then key and value.
    attribute_rows = sorted(
        (row[1:7] for row in kinds[_ATTRIBUTE_ROW]), key=lambda row: (-row[2], row[0], row[1])
    )
    sample_spans = sorted(
        (record_from_row(row[_COUNT_COLUMNS:]) for row in kinds[_SPAN_ROW]),
        key=lambda span: (span.trace_id, span.start_ns, span.span_id),
    )
    id_rows = [(focus, trace_id) for trace_id, focus, place in sampled if place <= sample_ids]
    return TraceGroups(
        target=target,
        split=split,
        window=window,
        threshold_ns=labels.threshold_ns,
        focus_traces=labels.focus_requests,
        baseline_traces=labels.baseline_requests,
        focus_sample=int(counts.get(True, 0)),
        baseline_sample=int(counts.get(False, 0)),
        operations=tuple(
            OperationPresence(row[0], row[1], *(int(value) for value in row[2:8]))
            for row in operation_rows
        ),
        attributes=tuple(
            AttributeCount(row[0], row[1], *(int(value) for value in row[2:6]))
            for row in attribute_rows
        ),
        examples=labels.examples,
        focus_ids=tuple(row[1] for row in id_rows if row[0]),
        baseline_ids=tuple(row[1] for row in id_rows if not row[0]),
        sample_spans=tuple(sample_spans),
    )


def _sample(
    fetch: Fetch, target: Target, labels: Labels, sample: int
) -> tuple[list[Row], Counter[bool]]:
    """The sampled traces (id, focus, place) and how many of each group were found.

    With per-minute counts the traces come from slices of the window holding enough
    requests of both groups (``time_slices``); inside the slices, or over the whole
    window without counts, the first traces of each group by hash. When the slices hold
    too few traces (several requests per trace, an overcounted focus), they widen.
    """
    start, end = labels.window.start_ns, labels.window.end_ns
    if labels.per_minute is None or end <= start:
        parts = _target_parts(target, labels.window, labels.synthetic_free)
        return _first_by_hash(
            fetch, parts, labels, sample, labels.focus_requests, labels.baseline_requests
        )

    def draw(
        runs: list[tuple[int, int]], held: tuple[float, float]
    ) -> tuple[tuple[list[Row], Counter[bool]], tuple[int, int]]:
        parts = _target_parts(target, labels.window, labels.synthetic_free)
        for part in parts:
            part.extend(starts_in([(low, high - 1) for low, high in runs]))
        sampled, counts = _first_by_hash(fetch, parts, labels, sample, *held)
        return (sampled, counts), (counts.get(True, 0), counts.get(False, 0))

    return time_slices.drawn(start, end, labels.per_minute, MINUTE_NS, sample, draw)


def _first_by_hash(
    fetch: Fetch,
    parts: list[Conditions],
    labels: Labels,
    sample: int,
    focus: float,
    baseline: float,
) -> tuple[list[Row], Counter[bool]]:
    """The first ``sample`` traces of each group by hash among the target spans (the
    union of ``parts``); ``focus`` and ``baseline`` requests are there, which sets the
    hash cutoffs."""
    focus_cutoff, baseline_cutoff = _cutoff(sample, focus), _cutoff(sample, baseline)
    while True:
        chosen, chosen_params = _labelled(parts, labels, focus_cutoff, baseline_cutoff, sample)
        # The sample is found once and handed to the counts as a list: finding it again
        # in each read filtered the target spans as many times more.
        sampled = fetch(
            f"{chosen} SELECT trace_id, focus, place FROM labelled ORDER BY focus, place",
            chosen_params,
        )
        counts = Counter(bool(row[1]) for row in sampled)
        short_focus = focus_cutoff is not None and counts.get(True, 0) < sample
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


def _target_parts(
    target: Target, window: TimeWindow, synthetic_free: bool = False
) -> list[Conditions]:
    """``_target_spans`` as disjoint parts to read one after the other (``ENTRY_PARTS``)."""
    if target.service is None:
        return [_target_spans(target, window, synthetic_free=synthetic_free)]
    return [_target_spans(target, window, entry, synthetic_free) for entry in ENTRY_PARTS]
