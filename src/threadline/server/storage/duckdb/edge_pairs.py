"""Edge pairs kept at ingest: each caller/callee pair counted into ``rollup_edges`` and
the SLO tables (``slo_rollups``) once, when its second span arrives.

A pair is a parent and its SERVER or CONSUMER child within ``PAIR_HORIZON_NS`` of each
other (``rollups`` says which pairs a batch finds: within the batch, a lonely callee
against stored callers, stored callees the batch adopts; ``strays`` sets the last two
apart). ``count`` finds the pairs of a query once, in a temporary table, and every
table's delta sums that table. The same statements subtract pairs when spans are
deleted (``rollups.forget_traces``, ``forget_before``) and count stored spans at
backfill (``rollups.rebuild``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.aggregates import OTHER_OPERATION, EdgeKind
from threadline.server.storage.duckdb import slo_rollups
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.schema import ROLLUP_EDGES, ROLLUP_NAMES, TABLE
from threadline.server.storage.duckdb.sql import ERROR, Row
from threadline.server.storage.duckdb.strays import (
    ADOPTED,
    LONELY,
    MINUTE_NS,
    PAIR_HORIZON_NS,
    Strays,
)

Run = Callable[[str, Sequence[object]], list[Row]]

# ``rollup_edges``' key and value columns (``fresh`` marks rows not yet compacted).
KEYS: Final = (
    "minute", "caller", "caller_operation", "callee", "callee_operation", "kind", "measure",
    "bucket",
)  # fmt: skip
VALUES: Final = ("calls", "errors")
_EDGE_COLUMNS: Final = ", ".join(KEYS + VALUES)
_PAIRS: Final = "threadline_pairs"


def pairs(callee: str, caller: str, *, synthetic_callees: bool = True, retries: bool = True) -> str:
    """Caller/callee pairs of two span relations, each row one call of an edge.

    The kinds are ``service_map``'s (the scan): a CLIENT parent of a SERVER span is a
    call, a PRODUCER parent of a CONSUMER span a message, and any other parent of a
    SERVER span in another service an inferred call. A span has one parent and the
    cases are tried in that order, so no pair is counted under two kinds.
    ``synthetic_callees`` False: no callee is marked synthetic (a batch without the
    marker), so no callee's attributes are parsed for it; ``retries`` False: no span
    of either relation carries a retry key (``slo_rollups``), nor are they read for one.
    """
    columns = slo_rollups.pair_columns(synthetic_callees=synthetic_callees, retries=retries)
    return f"""
SELECT * FROM (
    SELECT c.start_ns // {MINUTE_NS} AS minute,
           p.service_name AS caller, p.name AS caller_operation,
           c.service_name AS callee, c.name AS callee_operation,
           CASE WHEN p.kind = 'client' AND c.kind = 'server' THEN '{EdgeKind.CALL.value}'
                WHEN p.kind = 'producer' AND c.kind = 'consumer'
                    THEN '{EdgeKind.MESSAGE.value}'
                WHEN c.kind = 'server' AND p.service_name <> c.service_name
                    THEN '{EdgeKind.INFERRED.value}'
           END AS kind,
           c.duration_ns, c.status, c.start_ns - p.end_ns AS dwell_ns{columns}
    FROM {callee} AS c JOIN {caller} AS p
      ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE c.kind IN ('server', 'consumer')
      AND abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}
)
WHERE kind IS NOT NULL"""


# ``measure`` values of the part of an edge's calls that synthetic journeys made (the
# callee span marked ``journey.synthetic=true``), kept under the edge's own keys so the
# map can subtract them; every other reader asks for ``latency`` or ``dwell`` by name.
SYNTHETIC_LATENCY: Final = "synthetic"
SYNTHETIC_DWELL: Final = "synthetic-dwell"


def _edge_delta(sign: int, *, synthetic: bool = False) -> str:
    """The pairs' calls (``synthetic``: only synthetic journeys', under their measures)."""
    latency, dwell, only = ("latency", "dwell", "")
    if synthetic:
        latency, dwell, only = (SYNTHETIC_LATENCY, SYNTHETIC_DWELL, " WHERE synthetic")
    return f"""
INSERT INTO {ROLLUP_EDGES} ({_EDGE_COLUMNS})
WITH raw AS (SELECT * FROM {_PAIRS}{only}),
pair AS (
    SELECT raw.* REPLACE (coalesce(a.operation, '{OTHER_OPERATION}') AS caller_operation,
                          coalesce(b.operation, '{OTHER_OPERATION}') AS callee_operation)
    FROM raw
    LEFT JOIN {ROLLUP_NAMES} AS a ON a.service = raw.caller AND a.operation = raw.caller_operation
    LEFT JOIN {ROLLUP_NAMES} AS b ON b.service = raw.callee AND b.operation = raw.callee_operation
)
SELECT minute, caller, caller_operation, callee, callee_operation, kind, '{latency}',
       {bucket_sql("duration_ns")}, {sign} * count(*),
       {sign} * count(*) FILTER (WHERE status = '{ERROR}')
FROM pair GROUP BY ALL
UNION ALL
SELECT minute, caller, caller_operation, callee, callee_operation, kind, '{dwell}',
       {bucket_sql("dwell_ns")}, {sign} * count(*), 0
FROM pair WHERE kind = '{EdgeKind.MESSAGE.value}' GROUP BY ALL"""


def _near(condition: str) -> str:
    """Stored spans matching ``condition`` that started in ``[?, ?]`` (zone maps prune
    the rest)."""
    return f"(SELECT * FROM {TABLE} WHERE {condition} AND start_ns BETWEEN ? AND ?)"


# Any span may be a caller: an inferred edge's parent has any kind.
_CALLERS: Final = _near("true")


def _adopted_callees() -> str:
    """The stored spans of the kept orphans in ``ADOPTED`` that may be callees. A kept
    orphan has its span's start, and joining on it too lets DuckDB skip the row groups
    of the spans near the batch that hold none of the orphans' start times (the hash
    join's dynamic filter)."""
    return f"""(SELECT s.* FROM {_near("kind IN ('server', 'consumer')")} AS s
 SEMI JOIN {ADOPTED} AS a
   ON s.trace_id = a.trace_id AND s.span_id = a.span_id AND s.start_ns = a.start_ns)"""


def ingest_pairs(
    fresh: str, found: Strays, near: Sequence[object], *, synthetic: bool, retries: bool
) -> tuple[str, list[object]]:
    """Each pair with a side in the batch, once, and the parameters: both sides in the
    batch; a callee of the batch and a stored caller; a stored callee and a caller of
    the batch. ``synthetic`` False: no span of the batch is marked synthetic; ``retries``
    False: none carries a retry key (a stored side is read for one all the same)."""
    queries = [pairs(fresh, fresh, synthetic_callees=synthetic, retries=retries)]
    params: list[object] = []
    if found.lonely:
        queries.append(pairs(LONELY, _CALLERS, synthetic_callees=synthetic))
        params += near
    if found.adopted:
        queries.append(pairs(_adopted_callees(), fresh))
        params += near
    return " UNION ALL ".join(queries), params


def count(
    run: Run,
    query: str,
    params: Sequence[object],
    sign: int,
    *,
    edges: bool,
    slo: bool,
    synthetic: bool = True,
    retries: bool = True,
) -> None:
    """Count the pairs of ``query`` into ``rollup_edges`` (``edges``) and the
    SLO tables (``slo``), finding them once for all of the tables. ``synthetic`` False:
    the query marks no pair synthetic (its callees are known to carry no marker);
    ``retries`` False: it marks none a retry."""
    run(f"CREATE OR REPLACE TEMP TABLE {_PAIRS} AS {query}", params)
    if edges:
        run(_edge_delta(sign), [])
        # Most commits hold no synthetic journey: one look at the (small) pairs table
        # spares them the second pass, and no look is needed when none can be marked.
        if synthetic and run(f"SELECT 1 FROM {_PAIRS} WHERE synthetic LIMIT 1", []):
            run(_edge_delta(sign, synthetic=True), [])
    if slo:
        bucket = bucket_sql("duration_ns")
        deltas = slo_rollups.pair_deltas(_PAIRS, sign, bucket, synthetic=synthetic, retries=retries)
        for statement in deltas:
            run(statement, [])
    run(f"DROP TABLE {_PAIRS}", [])
