"""Rollups kept at ingest: what fleet views read instead of scanning every span.

Three tables, each keyed by the minute a span started (``start_ns // MINUTE_NS``):

- ``rollup_operations``: minute × service × operation × status × latency bucket of
  entry spans (SERVER, CONSUMER, or no parent): spans and their duration sum. A
  row per occupied bucket is the mergeable histogram (``analysis/sketch.py``);
  requests, errors and mean come from summing the rows.
- ``rollup_edges``: minute (of the callee) × caller service/operation × callee
  service/operation × kind × measure × bucket: calls and errors. ``measure`` is
  ``latency`` (the callee's duration) or ``dwell`` (queue hops: consumer start −
  producer end); ``synthetic`` and ``synthetic-dwell`` repeat both for the calls of
  synthetic journeys alone, which the service map subtracts. ``kind`` holds an
  ``EdgeKind`` value (``call``, ``message``, and any later kind such as an inferred
  edge) so a new kind needs no new table.
- ``rollup_services``: minute × service: every span, entry or not.
- ``rollup_exemplars`` (``exemplars``): one example trace per minute × service ×
  operation × ``/metrics`` latency slot, for histogram exemplars.
- ``rollup_names``: the operation names the rollups keep, at most ``OPERATION_CAP``
  per service (first come); spans of later names count under ``OTHER``. Any span
  may be the caller of an (inferred) edge, so every span's name is a candidate.

The SDK's telemetry about itself (``threadline.sdk.stats`` spans) is user-facing in
no aggregate (``sql.USER_TRAFFIC``): it is left out when the rollups are written, so
reads need no filter.

Every row is a sum, so a change is a *delta row* appended to the table: a batch
adds counts, a deletion appends negative ones, and reads sum the rows of a key.
The deltas are computed in SQL from the batch itself (``INSERT ... SELECT ...
GROUP BY``), in the writer's transaction, so spans and rollups commit together or
not at all. Appending costs ~1–4 ms a statement here, an upsert (``ON CONFLICT DO
UPDATE`` on a primary key) ~16–23 ms even for one row, so the writer appends and
``compact`` periodically folds the minutes that received deltas into one row per
key (dropping keys that sum to zero), which keeps reads proportional to the number
of keys rather than of commits.

Re-sent spans are dropped before anything is counted (``resends.py``).

An edge is a parent/child pair, and either side may arrive first. Each pair is
counted once, when its second span arrives, in the minute of the callee: pairs
within the batch; the batch's callees without a parent beside them against stored
callers; and stored callees the batch's callers adopt, found among the kept orphans
(``health_rollups``: a stored span whose parent had not arrived), not by a scan;
``strays`` sets the last two apart once per batch.
The lookups read only spans that started within ``PAIR_HORIZON_NS`` of the batch's
spans (zone maps again), and every pair is held to the same bound, whichever path
finds it: a caller that started more than the horizon away from its callee is not
an edge in the rollups.
The ART index on ``trace_id`` is not used for these joins (DuckDB probes it for
``=`` filters only); measured figures are in ``docs/adr/0005-rollups.md``.

The tables are created by schema version 3 (``migrations``, which also fills them
from the spans a file already holds; ``schema.rollup_statements`` for new files);
this module holds the write-side statements (the edge pairs' in ``edge_pairs``);
``rollup_reads`` answers from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.aggregates import OTHER_OPERATION
from threadline.server.batch import COLUMNS
from threadline.server.storage.duckdb import (
    edge_pairs,
    exemplars,
    resends,
    sdk_rollup,
    slo_rollups,
    span_groups,
    strays,
    summaries,
)
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.schema import (
    ROLLUP_EDGES,
    ROLLUP_NAMES,
    ROLLUP_OPERATIONS,
    ROLLUP_ORPHAN_SPANS,
    ROLLUP_SERVICES,
    TABLE,
)
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    USER_TRAFFIC,
    Conditions,
    Row,
    traces_in,
)
from threadline.server.storage.duckdb.strays import Strays

logger = logging.getLogger(__name__)

# Defined beside the lookups they bound (``strays``), which this module calls.
MINUTE_NS: Final = strays.MINUTE_NS
PAIR_HORIZON_NS: Final = strays.PAIR_HORIZON_NS

# The writer folds deltas after this many commits: each compaction reads only the
# minutes touched since the last one, so its cost follows recent traffic.
COMPACT_EVERY: Final = 64

# Distinct operation names kept per service; later names count as ``OTHER``, so a
# flood of names (ids in span names) cannot grow the rollups without bound.
OPERATION_CAP: Final = 500
OTHER: Final = OTHER_OPERATION

NAMES: Final = ROLLUP_NAMES
OPERATIONS: Final = ROLLUP_OPERATIONS
EDGES: Final = ROLLUP_EDGES
SERVICES: Final = ROLLUP_SERVICES
ORPHAN_SPANS: Final = ROLLUP_ORPHAN_SPANS
_FOLDED: Final = "threadline_folded"

_COLUMN_LIST: Final = ", ".join(COLUMNS)
# Key and value columns of each table (``fresh`` marks rows not yet compacted).
_KEYS: Final[dict[str, tuple[str, ...]]] = {
    OPERATIONS: ("minute", "service", "operation", "status", "bucket"),
    EDGES: edge_pairs.KEYS,
    SERVICES: ("minute", "service"),
    **slo_rollups.KEYS,
}
_VALUES: Final[dict[str, tuple[str, ...]]] = {
    OPERATIONS: ("spans", "duration_sum"),
    EDGES: edge_pairs.VALUES,
    SERVICES: ("spans",),
    **slo_rollups.VALUES,
}


Run = Callable[[str, Sequence[object]], list[Row]]


# More rollups kept from the same batch (``health_rollups.count``): called with the
# deduplicated batch's relation, the bounds of the stored spans a pair may reach,
# and the batch's ``Strays`` (None when no span of it may pair: no lookup at all).
Counter = Callable[[Run, str, Sequence[int], Strays | None], None]


_KEPT_OPERATION: Final = f"coalesce(r.operation, '{OTHER}')"


def _operation_delta(source: str, sign: int) -> str:
    return f"""
INSERT INTO {OPERATIONS} (minute, service, operation, status, bucket, spans, duration_sum)
SELECT start_ns // {MINUTE_NS}, service_name, coalesce(r.operation, '{OTHER}'), status,
       {bucket_sql("duration_ns")}, {sign} * count(*), {sign} * sum(duration_ns)
FROM {source} AS s
LEFT JOIN {NAMES} AS r ON r.service = s.service_name AND r.operation = s.name
WHERE {ENTRY}
GROUP BY ALL"""


def _register_names(source: str) -> str:
    """Keep the source's new operation names, up to ``OPERATION_CAP`` per service."""
    return f"""
INSERT INTO {NAMES} (service, operation)
SELECT service, operation FROM (
    SELECT n.service, n.operation, coalesce(k.known, 0)
           + row_number() OVER (PARTITION BY n.service ORDER BY n.operation) AS place
    FROM (SELECT DISTINCT service_name AS service, name AS operation FROM {source}
          WHERE {USER_TRAFFIC}) AS n
    ANTI JOIN {NAMES} AS r ON r.service = n.service AND r.operation = n.operation
    LEFT JOIN (SELECT service, count(*) AS known FROM {NAMES} GROUP BY service) AS k
      ON k.service = n.service
)
WHERE place <= {OPERATION_CAP}"""


def _service_delta(source: str, sign: int) -> str:
    return f"""
INSERT INTO {SERVICES} (minute, service, spans)
SELECT start_ns // {MINUTE_NS}, service_name, {sign} * count(*)
FROM {source} WHERE {USER_TRAFFIC} GROUP BY ALL"""


def _count_operations(
    run: Run, source: str, params: Sequence[object], sign: int, *, synthetic: bool = True
) -> None:
    """Count ``source``'s entry spans; ``synthetic`` False: it has no synthetic spans."""
    run(_operation_delta(source, sign), params)
    if synthetic:
        run(
            slo_rollups.synthetic_delta(source, sign, _KEPT_OPERATION, bucket_sql("duration_ns")),
            params,
        )


def compact(run: Run) -> None:
    """Fold each minute that received deltas into one row per key; zero sums go.

    Runs in the writer's transaction; only minutes with ``fresh`` rows are read.
    """
    for table in _KEYS:
        keys = ", ".join(_KEYS[table])
        sums = ", ".join(f"sum({column})" for column in _VALUES[table])
        nonzero = " OR ".join(f"sum({column}) <> 0" for column in _VALUES[table])
        touched = f"minute IN (SELECT DISTINCT minute FROM {table} WHERE fresh)"
        run(
            f"CREATE OR REPLACE TEMP TABLE {_FOLDED} AS SELECT {keys}, {sums}"
            f" FROM {table} WHERE {touched} GROUP BY ALL HAVING {nonzero}",
            [],
        )
        run(f"DELETE FROM {table} WHERE {touched}", [])
        columns = ", ".join(_KEYS[table] + _VALUES[table])
        run(f"INSERT INTO {table} ({columns}, fresh) SELECT *, false FROM {_FOLDED}", [])
        run(f"DROP TABLE {_FOLDED}", [])
    sdk_rollup.compact(run)


def append(
    run: Run,
    incoming: str,
    start_bounds: tuple[int, int],
    *,
    rollups: bool,
    may_pair: bool = True,
    counters: Sequence[Counter] = (),
    synthetic: bool = True,
    sdk_stats: bool = True,
    clamped: bool = False,
    new_names: bool = True,
    retries: bool = True,
) -> None:
    """Store the batch registered as ``incoming`` once, and (``rollups``) count it.

    Runs inside the caller's transaction. ``start_bounds`` are the batch's first
    and last ``start_ns``; ``may_pair`` is False when no span of the batch can be
    either side of an edge (the edge lookup, the dearest statement, is skipped);
    ``synthetic`` is False when no span is marked synthetic (nothing to count apart);
    ``sdk_stats`` False when no span is the SDK's telemetry (no report to keep);
    ``clamped`` True when a span's start was moved back from the future (``resends``);
    ``new_names`` False when every (service, operation) name of the batch was registered
    in a committed transaction and none can have left since (``known_names``);
    ``retries`` False when no span carries a retry key (``slo_rollups.RESEND_KEY``,
    ``ATTEMPT_KEY``).
    Operations, services and synthetic spans here, roots and entries in the
    counters' tables, are counted from one grouping of the batch (``span_groups``).
    The edge pairs read the orphans ``health_rollups.count`` keeps, so the writer
    always passes it among ``counters``.
    """
    low, high = start_bounds
    fresh = resends.unseen(run, incoming, start_bounds, clamped=clamped)
    run(f"INSERT INTO {TABLE} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {fresh}", [])
    if rollups:
        summaries.add(run, fresh, synthetic=synthetic)  # a delta row per trace of the batch
        if new_names:
            run(_register_names(fresh), [])
        # The per-span rollups (here and the counters') sum one grouping of the batch.
        span_groups.build(run, fresh, [], synthetic=synthetic)
        for statement in span_groups.deltas(1, synthetic=synthetic):
            run(statement, [])
        candidates = span_groups.exemplar_candidates()
        run(exemplars.insert(candidates), [low // MINUTE_NS, high // MINUTE_NS])
        span_groups.drop(run)
        near = [low - PAIR_HORIZON_NS, high + PAIR_HORIZON_NS]
        if sdk_stats:
            sdk_rollup.count(run, fresh)
        found = strays.set_apart(run, fresh) if may_pair else None
        if found is not None:
            # Before the counters: ``health_rollups.count`` drops the orphans adopted here.
            pairs, params = edge_pairs.ingest_pairs(
                fresh, found, near, synthetic=synthetic, retries=retries
            )
            # A stored side may carry marks, whatever the batch holds: a callee the
            # batch adopts, a stored caller of a lonely span.
            edge_pairs.count(
                run,
                pairs,
                params,
                1,
                edges=True,
                slo=True,
                synthetic=synthetic or found.adopted,
                retries=retries or found.lonely or found.adopted,
            )
        for counter in counters:
            counter(run, fresh, near, found)
        if found is not None:
            strays.forget(run)
    resends.release(run, fresh)


_DOOMED: Final = "threadline_doomed"


def forget_traces(
    run: Run, trace_ids: Sequence[str], *, erasing: bool = False, within: Conditions | None = None
) -> None:
    """Subtract the given traces' spans (about to be deleted whole) from the rollups.

    Every pair of a trace lies within the trace, so the edges subtracted are the
    pairs among the doomed spans themselves. ``erasing`` (a user's erasure) also
    leaves no trace of the spans' names: a span name may carry what the user did
    ("checkout <note>"), so the subtracted minutes are folded now (rows summing to
    zero go) and names that no other stored span has are dropped from the kept names.
    ``within``: where the traces' spans start (``sql.traces_in``).
    """
    doomed = traces_in(trace_ids, within)
    run(
        f"CREATE OR REPLACE TEMP TABLE {_DOOMED} AS SELECT * FROM {TABLE}{doomed.sql('WHERE')}",
        doomed.params,
    )
    _count_operations(run, _DOOMED, [], -1)
    run(_service_delta(_DOOMED, -1), [])
    edge_pairs.count(run, edge_pairs.pairs(_DOOMED, _DOOMED), [], -1, edges=True, slo=True)
    sdk_rollup.forget(run, _DOOMED)
    run(exemplars.forget_traces(_DOOMED), [])
    if erasing:
        compact(run)
        run(
            f"""DELETE FROM {NAMES} AS n
WHERE (n.service, n.operation) IN (SELECT DISTINCT service_name, name FROM {_DOOMED})
  AND NOT EXISTS (
      SELECT 1 FROM {TABLE} AS s
      WHERE s.service_name = n.service AND s.name = n.operation
        AND s.trace_id NOT IN (SELECT DISTINCT trace_id FROM {_DOOMED}))""",
            [],
        )
    run(f"DROP TABLE {_DOOMED}", [])


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Drop the rollup minutes retention removes; the cutoff's own minute is rebuilt.

    Edge rows stay with the callee's minute: a call whose callee is kept still
    counts after its caller span has aged out.
    """
    cutoff_minute = cutoff_ns // MINUTE_NS
    sdk_rollup.forget_before(run, cutoff_ns)
    for table in _KEYS:
        run(f"DELETE FROM {table} WHERE minute < ?", [cutoff_minute])
    run(exemplars.FORGET_BEFORE, [cutoff_ns])
    if cutoff_ns % MINUTE_NS:
        run(
            f"CREATE OR REPLACE TEMP TABLE {_DOOMED} AS SELECT * FROM {TABLE}"
            " WHERE start_ns >= ? AND start_ns < ?",
            [cutoff_minute * MINUTE_NS, cutoff_ns],
        )
        _count_operations(run, _DOOMED, [], -1)
        run(_service_delta(_DOOMED, -1), [])
        pairs = edge_pairs.pairs(_DOOMED, f"(SELECT * FROM {TABLE})")
        edge_pairs.count(run, pairs, [], -1, edges=True, slo=True)
        run(f"DROP TABLE {_DOOMED}", [])


def rebuild(run: Run, start_ns: int, end_ns: int) -> None:
    """Count every stored span that started in ``[start_ns, end_ns)`` (backfill).

    The rollups must hold nothing of that range yet; ranges are whole minutes.
    """
    source = f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ?)"
    run(_register_names(source), [start_ns, end_ns])
    run(_operation_delta(source, 1), [start_ns, end_ns])
    run(_service_delta(source, 1), [start_ns, end_ns])
    near = [start_ns - PAIR_HORIZON_NS, end_ns + PAIR_HORIZON_NS]
    pairs = edge_pairs.pairs(source, source)
    edge_pairs.count(run, pairs, [start_ns, end_ns, *near], 1, edges=True, slo=False)


def rebuild_slo_tables(run: Run, start_ns: int, end_ns: int) -> None:
    """Count every stored span that started in ``[start_ns, end_ns)`` into the SLO
    tables only (schema version 7's backfill; the other rollups hold them already)."""
    source = f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ?)"
    run(
        slo_rollups.synthetic_delta(source, 1, _KEPT_OPERATION, bucket_sql("duration_ns")),
        [start_ns, end_ns],
    )
    near = [start_ns - PAIR_HORIZON_NS, end_ns + PAIR_HORIZON_NS]
    edge_pairs.count(
        run, edge_pairs.pairs(source, source), [start_ns, end_ns, *near], 1, edges=False, slo=True
    )


def is_empty(run: Run) -> bool:
    return not run(f"SELECT 1 FROM {SERVICES} LIMIT 1", [])
