"""Trace groups in DuckDB: what the sampled traces of each group hold.

A target's traces are split into *focus* (slow or failed) and *baseline*, and a sample
of each is drawn, by ``group_sample``. Over every span of the sampled traces (but the
SDK's own reports, in no fleet view) the store then counts, per group:

- per (service, operation): traces holding it, total self time (and the sum of each
  trace's squared self time in it, for the margins of its means), traces where it
  is an error origin. Self time is exact, as ``analysis.tree`` computes it: a
  window function walks each parent's children by start time, and a child adds
  only the part of its (clipped) interval beyond the latest end seen so far —
  the length of the union of the children's intervals;
- per attribute ``key=value`` (span and resource attributes, via ``json_each``):
  the traces carrying it, and per key the distinct values and the traces carrying
  the key (so analysis can tell an identifier from a property). Values on fewer
  than ``min_support`` focus traces are dropped in SQL: identifiers (message ids,
  order numbers) would otherwise return one row per trace and explain nothing.

A sampled trace's spans are read where its summary says they start (within
``PAIR_HORIZON_NS`` of the window), so zone maps skip the rest; a failed trace whose
spans are kept apart (``kept_apart``; the sample says which) is read from there.
The sample is found once and its trace ids handed to the counts as a list: each
count finding it again filtered the target spans twice more. Both counts are one
statement over one read of the sampled traces' spans (``_SPANS_READ``): that read
filters every span of the traces' ranges by trace id, and a second one cost about as
much again. The same statement returns the whole spans of the sample's first traces
(``sample_ids`` a group), which critical paths walk: the read gives their counted
columns and row ids, and only their other columns are fetched, by row id (DuckDB
filters the table's scan by the row ids the join finds). Read again by trace id, they
were the same row groups a second time; carried along in the read for every sampled
trace's span, the other columns cost 10–15 ms more at 10M spans (``bench/trace_groups.py
--stages``). A trace whose request path the fold walked and kept (``kept_paths``: a hash
share of the copies) comes with that path's times instead, read before the statement.

The ranking itself is pure analysis (``analysis/tail_latency.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.aggregates import (
    Split,
    Target,
    TimeWindow,
    TraceGroups,
)
from threadline.server.analysis import time_slices
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.storage.duckdb import group_sample, kept_paths
from threadline.server.storage.duckdb.rollups import PAIR_HORIZON_NS
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    ERROR,
    USER_TRAFFIC,
    Fetch,
    Row,
    checked_limit,
    starts_in,
)
from threadline.server.storage.group_rows import attributes_from_rows, operations_from_rows

# Where the spans of the given traces start within a range: a few ranges (their
# summaries say), or ``None`` when that is not known for all of them.
SpanRanges = Callable[[Fetch, Sequence[str], tuple[int, int]], list[tuple[int, int]] | None]

# The span columns the counts read.
_COUNTED: Final = (
    "trace_id", "span_id", "parent_span_id", "service_name", "name", "kind", "start_ns",
    "end_ns", "duration_ns", "status", "attributes", "resource",
)  # fmt: skip
_READ_COLUMNS: Final = ", ".join(f"s.{column}" for column in _COUNTED)
# The spans of the labelled traces, read once for both counts below: the read filters
# every span of their ranges by trace id, and the attribute documents cost little more
# to carry along than a second read would (``labelled`` is defined before it).
# Each sampled trace is numbered (``trace_no``, its index in the sample's list; ``place``
# counts within a group, so it repeats): the joins and groupings after the read key on
# that integer. Keyed on the 32-character id, the statement took 7–9% longer at 10M
# spans (``docs/performance.md``).
# ``{apart}``: the reads of the traces whose spans are kept apart (``kept_apart``),
# or nothing. Their rows are numbered below zero, each table in a range of its own
# (``_COPY_ROWS``), so a row number names one row of one table; ``source`` says which.
_SPANS_READ: Final = f"""
spans_read AS MATERIALIZED (
    SELECT s.rowid AS row, {_READ_COLUMNS}, l.focus, l.place, l.trace_no, l.walk,
           {group_sample.IN_SPANS} AS source, s.rowid AS table_row
    FROM {TABLE} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE {{starts}} AND s.{USER_TRAFFIC} AND l.source = {group_sample.IN_SPANS}{{apart}}
)"""
# A baseline trace drawn from slices of the window may hold, outside its slice, a focus
# request (a failed or slow one a minute away): the read holds every span of a sampled
# trace, so such *misfits* show here (``{misfit}``: a target span in the window meeting
# the focus condition) and are left out. The draw took ``time_slices.spare`` traces
# more than the sample for them: each group keeps its first ``?`` traces by place but
# the misfits (``kept_traces`` does the same for the ids), numbered anew (``kept_place``:
# the whole spans returned are those of the first ones), and ``counted`` holds their
# spans, which the counts read.
_MISFITS: Final = """
misfit AS (SELECT DISTINCT trace_no, trace_id FROM spans_read WHERE NOT focus AND {misfit}),
kept AS (
    SELECT trace_no, row_number() OVER (PARTITION BY focus ORDER BY place) AS kept_place
    FROM labelled WHERE trace_no NOT IN (SELECT trace_no FROM misfit)
    QUALIFY kept_place <= ?
),
counted AS NOT MATERIALIZED (
    SELECT s.*, k.kept_place FROM spans_read AS s JOIN kept AS k ON s.trace_no = k.trace_no
)"""
# The row number of each copies' table's first row (counting down), by where a sampled
# row says its spans are: a range of 2^62 row numbers each.
_COPY_ROWS: Final = {group_sample.IN_FAILED: -1, group_sample.IN_SLOW: -1 - 2**62}


def _copy_read(source: int) -> str:
    """The read of the sampled traces whose spans are in the copies ``source`` names."""
    return f"""
    UNION ALL
    SELECT {_COPY_ROWS[source]} - s.rowid AS row, {_READ_COLUMNS}, l.focus, l.place,
           l.trace_no, l.walk, {source} AS source, s.rowid AS table_row
    FROM {group_sample.TABLES[source]} AS s JOIN labelled AS l ON s.trace_id = l.trace_id
    WHERE l.source = {source} AND s.start_ns BETWEEN ? AND ?"""


# Per-span self time and "error origin" (an error span with no failing child),
# for every span of the labelled traces, and each trace's squared self time summed
# exactly (128-bit integers: a sum of doubles depends on the order the threads add in,
# so two reads of the same traces could differ in the last digit). Once a child has
# found its parent by id, the
# parent is named by its row (``rowid``, unique in the read's snapshot): partitioning,
# grouping and joining on one integer costs less than on two id strings.
_OPERATIONS: Final = f"""
child AS (
    SELECT p.row AS parent_row, c.status = '{ERROR}' AS failed,
           greatest(c.start_ns, p.start_ns) AS clipped_start,
           least(c.end_ns, p.end_ns) AS clipped_end
    FROM counted AS c JOIN counted AS p
      ON c.trace_no = p.trace_no AND c.parent_span_id = p.span_id
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
    SELECT m.trace_no, m.focus, m.service_name, m.name,
           sum(greatest(0, m.end_ns - m.start_ns - coalesce(cv.covered_ns, 0))) AS self_ns,
           bool_or(m.status = '{ERROR}' AND NOT coalesce(cv.child_failed, false)) AS origin
    FROM counted AS m LEFT JOIN covered AS cv
      ON cv.parent_row = m.row
    GROUP BY m.trace_no, m.focus, m.service_name, m.name
),
operation_rows AS (
    SELECT service_name, name,
           count(*) FILTER (WHERE focus) AS focus_traces,
           count(*) FILTER (WHERE NOT focus) AS baseline_traces,
           coalesce(sum(self_ns) FILTER (WHERE focus), 0) AS focus_self_ns,
           coalesce(sum(self_ns) FILTER (WHERE NOT focus), 0) AS baseline_self_ns,
           count(*) FILTER (WHERE focus AND origin) AS focus_origins,
           count(*) FILTER (WHERE NOT focus AND origin) AS baseline_origins,
           coalesce(sum(self_ns::HUGEINT * self_ns) FILTER (WHERE focus), 0) AS focus_squares,
           coalesce(sum(self_ns::HUGEINT * self_ns) FILTER (WHERE NOT focus), 0)
               AS baseline_squares
    FROM per_trace
    GROUP BY service_name, name
)"""

# Traces of each group carrying each attribute value; ``?``: min support, limit.
# A trace's spans of one service share a resource document: its pairs are read once
# per trace and document, not once per span.
_ATTRIBUTES: Final = """
pair AS (
    SELECT m.trace_no, m.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM counted AS m, json_each(m.attributes) AS e
    UNION
    SELECT r.trace_no, r.focus, e.key, json_extract_string(e.value, '$') AS value
    FROM (SELECT DISTINCT trace_no, focus, resource FROM counted) AS r,
         json_each(r.resource) AS e
),
key_stats AS (
    SELECT key, count(DISTINCT value) AS key_values, count(DISTINCT trace_no) AS key_traces
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
_MISFIT_ROW: Final = 3
# Not the statement's: the kept paths of the sampled traces, read before it.
_PATH_ROW: Final = 4
_COUNT_COLUMNS: Final = 11

# Both counts in one statement, a row each; ``{starts}``: where the sampled traces'
# spans start (``starts_in``); ``{pad}`` and ``{spans}``: the whole spans of
# the first sampled traces (``_sample_spans``) after the count rows' columns, or nothing.
_COUNTS: Final = f"""{_SPANS_READ}, {_MISFITS}, {_OPERATIONS}, {_ATTRIBUTES}
SELECT {_OPERATION_ROW}, service_name, name, focus_traces, baseline_traces, focus_self_ns,
       baseline_self_ns, focus_origins, baseline_origins, focus_squares,
       baseline_squares{{pad}}
FROM operation_rows
UNION ALL
SELECT {_ATTRIBUTE_ROW}, key, value, focus_traces, baseline_traces, key_values, key_traces,
       NULL, NULL, NULL, NULL{{pad}}
FROM attribute_rows
UNION ALL
SELECT {_MISFIT_ROW}, trace_id, {", ".join(["NULL"] * (_COUNT_COLUMNS - 2))}{{pad}}
FROM misfit{{spans}}"""


# The whole spans of the traces placed up to ``?`` in their group's sample, after the
# count rows' columns: analyses that walk whole traces (critical paths) get them from
# the read the counts make, the columns it does not read fetched by row id (the row ids
# are the statement's own snapshot's, so they name the rows the read found).
def _sample_spans(source: int) -> str:
    """The whole spans of the first sampled traces whose rows are where ``source`` says,
    but those of the traces whose kept paths are returned instead (``walk`` false)."""
    table = group_sample.TABLES[source]
    return f"""
UNION ALL
SELECT {_SPAN_ROW}, {", ".join(["NULL"] * (_COUNT_COLUMNS - 1))},
       {", ".join(f"r.{c}" if c in _COUNTED else f"w.{c}" for c in COLUMNS)}
FROM counted AS r JOIN {table} AS w ON w.rowid = r.table_row
WHERE r.kept_place <= ? AND r.source = {source} AND r.walk"""


def trace_groups(
    fetch: Fetch,
    target: Target,
    split: Split,
    window: TimeWindow,
    *,
    labels: group_sample.Labels,
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
    # From slices, a few baseline traces may turn out to be focus ones (``_MISFITS``):
    # the draw takes spares for them, and draws again with more when they fall short.

    def draw(wanted: int) -> tuple[tuple[list[Row], dict[int, list[Row]]], int, int]:
        sampled, _ = group_sample.sample(fetch, target, labels, wanted)
        kinds = _counted(
            fetch,
            target,
            labels,
            sampled,
            sample=sample,
            min_support=min_support,
            max_attributes=max_attributes,
            sample_ids=sample_ids,
            span_ranges=span_ranges,
        )
        baseline = sum(1 for row in sampled if not row[1])
        return (sampled, kinds), baseline, len(kinds[_MISFIT_ROW])

    spare = time_slices.spare(sample) if labels.per_minute is not None else 0
    sampled, kinds = time_slices.refilled(sample, spare, draw)
    operation_rows = sorted(
        (row[1:_COUNT_COLUMNS] for row in kinds[_OPERATION_ROW]), key=lambda row: row[:2]
    )
    # As the statement's own ``ORDER BY``: most focus traces first, then key and value.
    attribute_rows = sorted(
        (row[1:7] for row in kinds[_ATTRIBUTE_ROW]), key=lambda row: (-row[2], row[0], row[1])
    )
    sample_spans = sorted(
        records_from_rows(row[_COUNT_COLUMNS:] for row in kinds[_SPAN_ROW]),
        key=lambda span: (span.trace_id, span.start_ns, span.span_id),
    )
    kept = kept_traces(sampled, {row[1] for row in kinds[_MISFIT_ROW]}, sample)
    counts = Counter(bool(row[1]) for row in kept)
    id_rows = [(row[1], row[0]) for row in kept_traces(kept, set(), sample_ids)]
    return TraceGroups(
        target=target,
        split=split,
        window=window,
        threshold_ns=labels.threshold_ns,
        focus_traces=labels.focus_requests,
        baseline_traces=labels.baseline_requests,
        focus_sample=int(counts.get(True, 0)),
        baseline_sample=int(counts.get(False, 0)),
        operations=operations_from_rows(operation_rows),
        attributes=attributes_from_rows(attribute_rows),
        examples=labels.examples,
        focus_ids=tuple(row[1] for row in id_rows if row[0]),
        baseline_ids=tuple(row[1] for row in id_rows if not row[0]),
        sample_spans=tuple(sample_spans),
        path_times=kept_paths.times(kinds[_PATH_ROW], {row[1] for row in id_rows}),
    )


def _counted(
    fetch: Fetch,
    target: Target,
    labels: group_sample.Labels,
    sampled: Sequence[Row],
    *,
    sample: int,
    min_support: int,
    max_attributes: int,
    sample_ids: int,
    span_ranges: SpanRanges | None,
) -> dict[int, list[Row]]:
    """The counting statement's rows over the drawn traces, by kind (``_COUNTS``)."""
    # Materialized: the five lists are constants of the plan, and inlined into each of
    # the statement's readers they were copied and compared while it was planned.
    labelled = (
        "WITH labelled AS MATERIALIZED (SELECT unnest(?::VARCHAR[]) AS trace_id,"
        " unnest(?::BOOLEAN[]) AS focus, unnest(?::BIGINT[]) AS place,"
        " unnest(?::INTEGER[]) AS trace_no, unnest(?::INTEGER[]) AS source,"
        " unnest(?::BOOLEAN[]) AS walk)"
    )
    # The paths the store kept of sampled traces it read from the copies (so folded), by
    # the target's request: a walked one comes with its path's times, not its spans.
    path_rows: list[Row] = []
    if sample_ids > 0 and target.service is not None and target.operation is not None:
        folded = [row[0] for row in sampled if row[3] != group_sample.IN_SPANS]
        path_rows = kept_paths.read(fetch, target.service, target.operation, folded)
    with_path = {row[0] for row in path_rows}
    ids = [row[0] for row in sampled]
    params: list[object] = [ids, [bool(row[1]) for row in sampled]]
    params.append([int(row[2]) for row in sampled])
    params.append(list(range(len(sampled))))
    params.append([int(row[3]) for row in sampled])
    params.append([row[0] not in with_path for row in sampled])
    # Spans of the sampled traces are read within the horizon around the window, and
    # where their summaries say they lie: zone maps skip the rest.
    horizon = (labels.window.start_ns - PAIR_HORIZON_NS, labels.window.end_ns + PAIR_HORIZON_NS)
    in_spans = [row[0] for row in sampled if row[3] == group_sample.IN_SPANS]
    ranges = None if span_ranges is None else span_ranges(fetch, in_spans, horizon)
    where = [horizon] if ranges is None else time_slices.within(ranges, horizon)
    reads = starts_in(where, "s.start_ns")
    sources = sorted({int(row[3]) for row in sampled} - {group_sample.IN_SPANS})
    apart = "".join(_copy_read(source) for source in sources)
    apart_params = [bound for _ in sources for bound in horizon]
    pad, spans, spans_params = "", "", list[object]()
    if sample_ids > 0:
        pad = ", NULL" * len(COLUMNS)
        read = [group_sample.IN_SPANS, *sources]
        spans = "".join(_sample_spans(source) for source in read)
        spans_params = [sample_ids] * len(read)
    starts = " AND ".join(reads.fragments)
    misfit = group_sample.focus_requests(target, labels)
    statement = _COUNTS.format(
        starts=starts, apart=apart, misfit=" AND ".join(misfit.fragments), pad=pad, spans=spans
    )
    rows = fetch(
        f"{labelled}, {statement}",
        [
            *params,
            *reads.params,
            *apart_params,
            *misfit.params,
            sample,
            min_support,
            checked_limit(max_attributes, "max_attributes"),
            *spans_params,
        ],
    )
    kinds: dict[int, list[Row]] = {
        _OPERATION_ROW: [], _ATTRIBUTE_ROW: [], _SPAN_ROW: [], _MISFIT_ROW: [],
        _PATH_ROW: path_rows,
    }  # fmt: skip
    for row in rows:
        kinds[row[0]].append(row)
    return kinds


def kept_traces(sampled: Sequence[Row], misfits: set[str], sample: int) -> list[Row]:
    """The sampled rows (id, focus, place, where) each group keeps: its first ``sample``
    by place but the misfits (baseline rows; a misfit is drawn as focus too when the
    focus sample is drawn apart), as ``_MISFITS`` keeps them in SQL."""
    ordered = sorted(sampled, key=lambda row: (bool(row[1]), row[2]))
    drawn = [(str(row[0]), bool(row[1])) for row in ordered]
    return [ordered[place] for place in time_slices.kept(drawn, misfits, sample)]
