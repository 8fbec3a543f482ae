"""Trace summaries kept at ingest: one row per trace for search and journey lists.

``trace_summaries`` (schema version 4) holds what a list of traces shows, so that
search and journey lists read one row per trace instead of grouping every span:
first start, last end, last start, the root (the earliest span without a parent,
else the earliest span), span and error counts, the services and the
(service, operation, status) triples the trace touched, its session and user ids
(every one its spans carry, as the span table stores them: pseudonymised by the
SDK) and where its error started.

Like the rollups, a change is a *delta row* appended in the writer's transaction
(``add``, called by ``rollups.append`` on the batch left after re-sent spans are
dropped, so a re-sent span is never counted twice): a batch appends one row per
trace it holds, and a later batch of the same trace appends another. Every
column folds: ``min``/``max`` for times, ``min`` of a struct ordered
(has a parent, start, span id) for the root, sums for counts, list unions for the
sets (the ids among them). ``fold`` merges a trace's rows into one, every
``rollups.COMPACT_EVERY`` commits; reads merge rows not yet folded on the fly
(``summary_reads``). Appending costs one ``INSERT ... SELECT ... GROUP BY`` over
the batch; an upsert on a trace id key would cost 16–23 ms a statement here.

The error origin is ``analysis.error_origin``'s rule, which needs the trace's
tree: ``fold`` copies the spans of the traces it folds that hold an error apart
(``kept_apart``; bounded by their time range, so zone maps prune the span table)
and runs the rule on the copies.
Until its next fold, a trace that received spans shows no origin.

A folded row keeps its duration too (``duration_ns``, version 21; NULL on delta
rows): a filter on it reads one column, so the scan leaves the other columns of
rows it drops unread, where ``end_ns - start_ns`` read both times of every row
before any other filter.

Deletions remove whole rows: tail sampling and erasure delete whole traces, and
retention deletes the rows of traces whose every span aged out and rebuilds the
rows of traces it cuts from the spans they keep (not folded until the next fold).
Every change of folded rows counts the sessions of the traces it changed again
(``journey_summaries``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.error_origin import find_error_origin
from threadline.server.model import SpanEvent, SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import (
    journey_steps,
    journey_summaries,
    kept_apart,
    kept_paths,
)
from threadline.server.storage.duckdb.schema import FAILED_SPANS, TABLE, TRACE_SUMMARIES
from threadline.server.storage.duckdb.sql import (
    ERROR,
    NO_PARENT,
    USER_TRAFFIC,
    Conditions,
    Row,
    starts_in,
    traces_in,
)

logger = logging.getLogger(__name__)

Run = Callable[[str, Sequence[object]], list[Row]]

SUMMARIES: Final = TRACE_SUMMARIES
_FOLDED: Final = "threadline_folded_summaries"
_CUT: Final = "threadline_cut_traces"

# Every column but ``fresh``, in table order.
VALUE_COLUMNS: Final = (
    "trace_id, start_ns, end_ns, last_start_ns, root, spans, errors, services, operations,"
    " sessions, users, origin_service, origin_operation"
)


# ``operations`` holds ``service␟operation␟status`` strings (joined by the unit
# separator, U+001F): a list of strings costs a third of a list of structs to build.
SEPARATOR: Final = "chr(31)"


def delta(source: str) -> str:
    """One row per trace of the spans in ``source``.

    The root candidate is a struct whose order (has a parent, start, span id) is the
    scan's root rule, so the ``min`` of several rows' candidates is the trace's root.
    Lists are left unsorted: folds and reads sort. Each is built whole and then
    deduplicated (``list_distinct``, which also leaves out NULL ids): a
    ``list(DISTINCT ...)`` aggregate keeps a hash table of its own per trace and cost
    the writer about half as much again (``bench/ingest_profile.py``).
    """
    triple = f"service_name || {SEPARATOR} || name || {SEPARATOR} || status"
    return f"""
SELECT trace_id, min(start_ns), max(end_ns), max(start_ns),
       min({{'orphan': NOT ({NO_PARENT}), 'start_ns': start_ns, 'span_id': span_id,
             'service': service_name, 'operation': name}}),
       count(*), count(*) FILTER (WHERE status = '{ERROR}'),
       list_distinct(list(service_name)), list_distinct(list({triple})),
       list_distinct(list(session_id)), list_distinct(list(user_id)),
       NULL, NULL
FROM {source} WHERE {USER_TRAFFIC}
GROUP BY trace_id"""


# The merge of a trace's rows: times, root and counts (cheap), then the lists.
SCALARS: Final = """
min(start_ns) AS start_ns, max(end_ns) AS end_ns, max(last_start_ns) AS last_start_ns,
min(root) AS root, sum(spans)::BIGINT AS spans, sum(errors)::BIGINT AS errors"""
LISTS: Final = """
list_sort(list_distinct(flatten(list(services)))) AS services,
list_sort(list_distinct(flatten(list(operations)))) AS operations,
list_sort(list_distinct(flatten(list(sessions)))) AS sessions,
list_sort(list_distinct(flatten(list(users)))) AS users"""
MERGED: Final = f"{SCALARS},{LISTS}"


def any_fresh(fetch: Run) -> bool:
    """Whether a row is not folded yet (the zone maps of ``fresh`` answer it mostly)."""
    return bool(fetch(f"SELECT 1 FROM {SUMMARIES} WHERE fresh LIMIT 1", []))


def add(run: Run, source: str, *, synthetic: bool = True) -> None:
    """Append the delta rows of the spans in ``source`` (already deduplicated);
    ``synthetic`` False: no span of ``source`` is marked synthetic (none to record)."""
    run(f"INSERT INTO {SUMMARIES} ({VALUE_COLUMNS}) {delta(source)}", [])
    if synthetic:
        journey_steps.mark_synthetic(run, source)


def fold(run: Run, *, steps: bool = True) -> None:
    """Merge the rows of every trace that received deltas into one; compute origins.

    Runs in the writer's transaction; only traces with ``fresh`` rows are read.
    ``steps`` also replaces the folded traces' journey steps, counts their sessions'
    journey summaries again, keeps the failed traces' spans apart (``kept_apart``) with
    the request paths of a share of them (``kept_paths``), and keeps each folded row's
    duration; False only for the version 4 backfill, which
    runs before those tables and that column exist (versions 9, 17, 19 and 21).
    """
    run(
        f"CREATE OR REPLACE TEMP TABLE {_FOLDED} AS"
        f" SELECT trace_id, {MERGED}, NULL::VARCHAR AS origin_service,"
        " NULL::VARCHAR AS origin_operation"
        f" FROM {SUMMARIES}"
        f" WHERE trace_id IN (SELECT trace_id FROM {SUMMARIES} WHERE fresh)"
        " GROUP BY trace_id",
        [],
    )
    span = folded_span(run)
    # Nothing folded: every bounded delete deletes nothing.
    within = Conditions(["false"]) if span is None else starts_in([span])
    if steps:
        # The failed traces' spans are copied first, and their origins found in the copy.
        _set_origins(run, kept_apart.keep(run, _FOLDED, within), FAILED_SPANS)
        kept_paths.keep(run, _FOLDED, within)
    else:
        _set_origins(run, kept_apart.failing(run, _FOLDED), TABLE)
    if steps:
        journey_steps.refresh(run, _FOLDED, within)
        journey_summaries.mark(run, f"SELECT trace_id FROM {_FOLDED}", within=within)
    run(
        f"DELETE FROM {SUMMARIES} WHERE trace_id IN (SELECT trace_id FROM {_FOLDED})"
        f"{within.sql('AND')}",
        within.params,
    )
    # A folded row keeps its duration (version 21), which searches by duration filter
    # and sort on; the version 4 backfill runs before the column exists.
    duration = (", duration_ns", ", end_ns - start_ns") if steps else ("", "")
    run(
        f"INSERT INTO {SUMMARIES} ({VALUE_COLUMNS}, fresh{duration[0]})"
        f" SELECT {VALUE_COLUMNS}, false{duration[1]} FROM {_FOLDED}",
        [],
    )
    if steps:
        journey_summaries.rebuild(run, since_ns=None if span is None else span[0])
    run(f"DROP TABLE {_FOLDED}", [])


def folded_span(run: Run) -> tuple[int, int] | None:
    """Where every row kept of the traces being folded starts (``None``: none is being
    folded): their summary rows, and the copies (``kept_apart``) and journey steps
    earlier folds made of them.

    A folded row merges all of a trace's rows, so its first start is at or before each
    row's, and its last start at or after each row's last; a copy holds spans of the
    trace's summary rows, and a step starts where its trace did. Those tables lie in
    fold order, so a delete bounded by the folded traces' range reads the row groups of
    that range, not the whole table: a fold's cost then follows what it folds, not the
    store (a late span of an old trace widens the range of its own fold alone).
    """
    low, high = run(f"SELECT min(start_ns), max(last_start_ns) FROM {_FOLDED}", [])[0]
    return None if low is None else (int(low), int(high))


def _set_origins(run: Run, chunks: list[kept_apart.Chunk], source: str) -> None:
    """The error origin of each folded trace with an error (``chunks``), from its spans
    in ``source`` (the span table, or the copies of failed traces' spans)."""
    for chunk in chunks:
        rows = run(
            f"SELECT {_TREE_COLUMNS} FROM {source}"
            " WHERE start_ns BETWEEN ? AND ? AND trace_id IN (SELECT unnest(?::VARCHAR[]))"
            f" AND {USER_TRAFFIC}",
            [chunk.low_ns, chunk.high_ns, chunk.trace_ids],
        )
        by_trace: dict[str, list[SpanRecord]] = {}
        for row in rows:
            by_trace.setdefault(str(row[0]), []).append(_tree_span(row))
        found: list[tuple[str, str, str]] = []
        for trace_id, spans in by_trace.items():
            origin = find_error_origin(fix_up(spans).tree).origin
            if origin is not None:
                found.append((trace_id, origin.service, origin.operation))
        if found:
            run(
                f"UPDATE {_FOLDED} AS f SET origin_service = o.service,"
                " origin_operation = o.operation"
                " FROM (SELECT unnest(?::VARCHAR[]) AS trace_id, unnest(?::VARCHAR[]) AS service,"
                " unnest(?::VARCHAR[]) AS operation) AS o WHERE f.trace_id = o.trace_id",
                [[f[0] for f in found], [f[1] for f in found], [f[2] for f in found]],
            )


# What the error-origin rule reads of a span: no attributes (most of a span's bytes);
# events, for the time an error was raised, only of error spans.
_TREE_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, service_name, name, kind, start_ns, end_ns, status,"
    f" status_message, CASE WHEN status = '{ERROR}' THEN events END"
)


def _tree_span(row: Row) -> SpanRecord:
    return SpanRecord(
        trace_id=row[0],
        span_id=row[1],
        parent_span_id=row[2],
        service_name=row[3],
        name=row[4],
        kind=SpanKind(row[5]),
        start_ns=int(row[6]),
        end_ns=int(row[7]),
        status=StatusCode(row[8]),
        status_message=row[9],
        events=tuple(
            SpanEvent(e["name"], int(e["time_ns"]), e["attributes"])
            for e in (json.loads(row[10]) if row[10] else ())
        ),
    )


def forget_traces(run: Run, trace_ids: Sequence[str], within: Conditions | None = None) -> None:
    """Delete the rows (and journey steps) of traces deleted whole (tail sampling,
    erasure); ``within``: where they start (``traces_span``)."""
    journey_steps.forget_traces(run, trace_ids, within)
    doomed = "SELECT unnest(?::VARCHAR[])"
    journey_summaries.mark(run, doomed, [list(trace_ids)], within=within)
    rows = traces_in(trace_ids, within)
    run(f"DELETE FROM {SUMMARIES}{rows.sql('WHERE')}", rows.params)
    journey_summaries.rebuild(run)


def traces_span(run: Run, trace_ids: Sequence[str]) -> tuple[int, int] | None:
    """Where every span of ``trace_ids`` starts, for deletes of whole traces (tail
    sampling) that would otherwise read every trace id of each table they delete from:
    their summary rows' range (one row per trace, not a span each), when each trace has
    one; ``None`` (read them all) when one has none or holds an SDK report, which
    summaries leave out, so it may lie outside that range.

    Costs a read of the summaries' trace ids and of the span table's names (both
    cheaper than a read of its trace ids); at 10M spans, a delete of 200 recent traces
    then takes about half as long (``docs/performance.md``)."""
    ids = sorted(set(trace_ids))
    low, high, traces = run(
        f"SELECT min(start_ns), max(last_start_ns), count(DISTINCT trace_id) FROM {SUMMARIES}"
        " WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )[0]
    if low is None or int(traces) < len(ids):
        return None
    reports = run(
        f"SELECT 1 FROM {TABLE} WHERE NOT ({USER_TRAFFIC})"
        " AND trace_id IN (SELECT unnest(?::VARCHAR[])) LIMIT 1",
        [ids],
    )
    return None if reports else (int(low), int(high))


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Retention: rows of traces with spans before ``cutoff_ns`` go; cut traces are rebuilt.

    Runs before the spans are deleted; a trace that keeps spans gets a row counted
    from them alone.
    """
    run(
        f"CREATE OR REPLACE TEMP TABLE {_CUT} AS"
        f" SELECT trace_id, max(last_start_ns) AS last_start_ns FROM {SUMMARIES}"
        f" WHERE trace_id IN (SELECT trace_id FROM {SUMMARIES} WHERE start_ns < ?)"
        " GROUP BY trace_id",
        [cutoff_ns],
    )
    journey_summaries.mark(run, f"SELECT trace_id FROM {_CUT}")
    run(f"DELETE FROM {SUMMARIES} WHERE trace_id IN (SELECT trace_id FROM {_CUT})", [])
    journey_summaries.rebuild(run)
    kept = run(f"SELECT max(last_start_ns) FROM {_CUT} WHERE last_start_ns >= ?", [cutoff_ns])
    if kept and kept[0][0] is not None:
        # The kept spans of cut traces started in [cutoff, their last start]: zone maps
        # skip the rest of the span table.
        source = (
            f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns <= ?"
            f" AND trace_id IN (SELECT trace_id FROM {_CUT} WHERE last_start_ns >= ?))"
        )
        run(
            f"INSERT INTO {SUMMARIES} ({VALUE_COLUMNS}) {delta(source)}",
            [cutoff_ns, int(kept[0][0]), cutoff_ns],
        )
    run(f"DROP TABLE {_CUT}", [])
    journey_steps.forget_before(run, cutoff_ns)


def rebuild(run: Run, start_ns: int, end_ns: int) -> None:
    """Append the deltas of every stored span that started in ``[start_ns, end_ns)``.

    For a backfill: a trace whose spans fall in several ranges gets a row from
    each, which ``fold`` merges.
    """
    source = f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ?)"
    run(
        f"INSERT INTO {SUMMARIES} ({VALUE_COLUMNS}) {delta(source)}",
        [start_ns, end_ns],
    )
