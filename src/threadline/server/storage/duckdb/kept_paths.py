"""Request paths kept for a hash share of the copied traces (``trace_request_paths``,
schema version 25), walked when the fold copies them.

Tail causes by the critical path walk the first traces of each group's sample whole
(``query.PATH_SAMPLE``): their spans, records, fix-ups and request paths were most of
what parted that answer from the one by self time. Walking every copied trace at the
fold costs the writer far more than ingest can spare (docs/adr/0005-rollups.md). But a
sample is the first traces of its group by ``hash(trace_id)`` (``group_sample``), so in
a large group the walked ones all lie at the start of the hash range. The fold walks
the copies of the traces in the first ``SLOW_SHARE``-th of the range (slow copies,
where a slow split's focus lies) or the first ``OTHER_SHARE``-th (the failed and shared
copies, where every baseline lies), the same way a read would: the root request's path
(``request_paths.request_path`` of the fixed-up trace), and keeps each operation's own
time on it, one row per operation. A read takes those rows for the walked traces it
drew from the copies (so folded) whose root request is its target, and walks the rest.

Kept in step with the copies: the fold first drops the rows of every trace it folds, so
a late span has its trace walked again with it; every delete of copies deletes the rows
too (``kept_apart.forget_traces``, ``forget_before``: tail sampling, erasure, retention,
which drops a trace's rows once its first span goes); compaction copies the table with
the others. The upgrade to version 25 walks the copies already kept (``fill``).

Cost: at 10M spans of the bench's shop the shares hold 2% of the copied traces (2,205
traces, 41,097 spans: under a second of the writer's time over the load) and about 18
rows a trace walked; a group of N traces finds its first 100 in the share when N is at
least 100 times the share's denominator, and a smaller group's reads walk the rest as
before (``bench/walked_paths.py``, ``docs/performance.md``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Final

from threadline.server.aggregates import Target
from threadline.server.analysis.assembly import fix_up
from threadline.server.analysis.request_paths import path_time, request_path
from threadline.server.analysis.tree import root_span
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.model import SpanRecord
from threadline.server.storage.duckdb.kept_apart import CHUNK, Run
from threadline.server.storage.duckdb.schema import FAILED_SPANS, REQUEST_PATHS, SLOW_SPANS
from threadline.server.storage.duckdb.sql import Conditions, Fetch, Row

# One slow copy in this many by hash is walked: groups of 6,400 slow traces or more in
# a window find their 100 walked traces here.
SLOW_SHARE: Final = 64
# One failed or shared copy in this many: every baseline is ten times its focus or more.
OTHER_SHARE: Final = 512

_HASH_RANGE: Final = 2**64
_COLUMNS: Final = ", ".join(COLUMNS)
# A kept row: the trace, its first start, its root request's service and operation, an
# operation on that request's path and its own time there.
PathRow = tuple[str, int, str, str, str, str, int]


def keep(run: Run, folded: str, within: Conditions) -> None:
    """Replace the kept paths of the traces in ``folded`` (merged summary rows) by the
    walks of those whose copies (made just before) lie in a share. ``within``: where
    every row kept of those traces starts (``summaries.folded_span``)."""
    run(
        f"DELETE FROM {REQUEST_PATHS} WHERE trace_id IN (SELECT trace_id FROM {folded})"
        f"{within.sql('AND')}",
        within.params,
    )
    folded_ones = Conditions([f"trace_id IN (SELECT trace_id FROM {folded})"])
    _walk_shares(run, folded_ones.joined(within), within)


def fill(run: Run) -> None:
    """Walk every copy in the shares (an upgrade, or copies made again), replacing what
    was kept."""
    run(f"DELETE FROM {REQUEST_PATHS}", [])
    _walk_shares(run, Conditions(), Conditions())


def _walk_shares(run: Run, among: Conditions, within: Conditions) -> None:
    """Walk the copies of the traces ``among`` selects that lie in their table's share,
    their spans read ``within`` a range; a trace copied as slow and as failed or shared
    is walked once, from the slow copies."""
    walked: set[str] = set()
    for table, share in ((SLOW_SPANS, SLOW_SHARE), (FAILED_SPANS, OTHER_SHARE)):
        ids = [
            str(row[0])
            for row in run(
                f"SELECT DISTINCT trace_id FROM {table}"
                f" WHERE hash(trace_id) < CAST(? AS UBIGINT){among.sql('AND')}",
                [_HASH_RANGE // share, *among.params],
            )
            if str(row[0]) not in walked
        ]
        walked.update(ids)
        for first in range(0, len(ids), CHUNK):
            _walk(run, table, ids[first : first + CHUNK], within)


def _walk(run: Run, table: str, trace_ids: list[str], within: Conditions) -> None:
    """Walk the copies in ``table`` of ``trace_ids`` and keep their paths' rows."""
    # Ordered as a read's spans are (``TraceGroups.sample_spans``): the fix-ups keep
    # the first of two copies of a span, so both walk the same spans.
    rows = run(
        f"SELECT {_COLUMNS} FROM {table}"
        f" WHERE trace_id IN (SELECT unnest(?::VARCHAR[])){within.sql('AND')}"
        " ORDER BY trace_id, start_ns, span_id",
        [trace_ids, *within.params],
    )
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in records_from_rows(rows):
        traces[span.trace_id].append(span)
    kept = [row for spans in traces.values() for row in path_rows(spans)]
    if kept:
        columns = list(zip(*kept, strict=True))
        run(
            f"INSERT INTO {REQUEST_PATHS} SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]),"
            " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
            " unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
            [list(column) for column in columns],
        )


def path_rows(spans: list[SpanRecord]) -> list[PathRow]:
    """One trace's kept rows: each operation's own time on the critical path of its root
    request, as a read walks it for a target naming that request's service and
    operation (none when it holds no such request)."""
    tree = fix_up(spans).tree
    root = root_span(tree)
    if root is None:
        return []
    path = request_path(tree, Target(service=root.service_name, operation=root.name))
    if path is None:
        return []
    trace_id = spans[0].trace_id
    first = min(span.start_ns for span in spans)
    return [
        (trace_id, first, root.service_name, root.name, service, operation, spent)
        for (service, operation), spent in path_time(path).items()
    ]


def read(fetch: Fetch, service: str, operation: str, trace_ids: Sequence[str]) -> list[Row]:
    """The kept rows (trace, operation's service, operation, own time) of those of
    ``trace_ids`` whose root request is ``service`` and ``operation``."""
    if not trace_ids:
        return []
    return fetch(
        f"SELECT trace_id, service, operation, own_ns FROM {REQUEST_PATHS}"
        " WHERE target_service = ? AND target_operation = ?"
        " AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
        [service, operation, list(trace_ids)],
    )


def times(rows: Sequence[Row], trace_ids: Collection[str]) -> dict[str, dict[tuple[str, str], int]]:
    """``read``'s rows of ``trace_ids`` as each trace's own time per operation."""
    found: dict[str, dict[tuple[str, str], int]] = {}
    for trace, service, operation, own in rows:
        if trace in trace_ids:
            found.setdefault(str(trace), {})[(str(service), str(operation))] = int(own)
    return found
