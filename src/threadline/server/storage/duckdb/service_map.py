"""The service map in DuckDB: caller → callee edges from parent/child span pairs.

Every SERVER or CONSUMER span with a parent in its trace is one call, of one kind,
decided by its parent span (found by a self-join on the parent span id within the
trace, ~130 ms over 1M spans):

- ``call``: the parent is a CLIENT span and the child a SERVER span;
- ``message``: the parent is a PRODUCER span and the child a CONSUMER span;
- ``inferred``: the child is a SERVER span whose parent is any other span of
  *another* service. Fleets that instrument only their servers, or call through
  clients the SDK does not see, record no CLIENT span, yet the server's parent
  says who called. A span has one parent, so a call is never counted twice: a
  SERVER span under a CLIENT span is a ``call`` and only that.

Service edges and operation edges come from one scan with ``GROUPING SETS``, so
both levels agree; latency is the callee span's duration, queue dwell the time
from the producer's end to the consumer's start. Calls whose callee belongs to a
synthetic journey (``journey.synthetic=true``) are left out, as are synthetic entry
spans from the services' figures: the map shows the users' traffic. Pairs are chosen by the callee's
start time: a message may sit in a queue longer than any window, and it is still
this window's traffic once consumed.
"""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import (
    EdgeKind,
    EdgeStats,
    OperationEdge,
    OperationRed,
    Percentiles,
    ServiceEdge,
    ServiceMap,
    TimeWindow,
)
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    ENTRY,
    ERROR,
    HAS_PARENT,
    Fetch,
    in_window,
    latency,
    percentiles,
    red_columns,
    red_stats,
    synthetic,
)

_EDGES: Final = f"""
WITH callee AS (
    SELECT trace_id, parent_span_id, service_name, name, kind, start_ns, duration_ns, status
    FROM {TABLE}
    WHERE kind IN ('server', 'consumer') AND {HAS_PARENT} AND start_ns >= ? AND start_ns < ?
      AND NOT {synthetic()}
),
pair AS (
    SELECT caller.service_name AS caller,
           caller.name AS caller_operation,
           callee.service_name AS callee,
           callee.name AS callee_operation,
           CASE
               WHEN caller.kind = 'client' AND callee.kind = 'server' THEN '{EdgeKind.CALL}'
               WHEN caller.kind = 'producer' AND callee.kind = 'consumer'
                   THEN '{EdgeKind.MESSAGE}'
               WHEN callee.kind = 'server' AND caller.service_name <> callee.service_name
                   THEN '{EdgeKind.INFERRED}'
           END AS edge_kind,
           callee.duration_ns,
           callee.status,
           callee.start_ns - caller.end_ns AS dwell_ns
    FROM callee JOIN {TABLE} AS caller
      ON callee.trace_id = caller.trace_id AND callee.parent_span_id = caller.span_id
)
SELECT grouping(caller_operation, callee_operation) = 0 AS per_operation,
       caller, caller_operation, callee, callee_operation, edge_kind,
       count(*),
       count(*) FILTER (WHERE status = '{ERROR}'),
       {latency("duration_ns")},
       {latency("dwell_ns")} FILTER (WHERE edge_kind = '{EdgeKind.MESSAGE}')
FROM pair
WHERE edge_kind IS NOT NULL
GROUP BY GROUPING SETS (
    (caller, callee, edge_kind),
    (caller, caller_operation, callee, callee_operation, edge_kind)
)
ORDER BY caller, callee, edge_kind, caller_operation NULLS FIRST, callee_operation NULLS FIRST"""


def service_map(fetch: Fetch, window: TimeWindow) -> ServiceMap:
    entries = in_window(window)
    entries.add(ENTRY)
    # Probes and drills stay off the map's traffic figures, as in the rollups.
    entries.add(f"NOT {synthetic()}")
    service_rows = fetch(
        f"SELECT service_name, {red_columns()} FROM {TABLE}{entries.sql('WHERE')}"
        " GROUP BY service_name ORDER BY service_name",
        entries.params,
    )
    edges: list[ServiceEdge] = []
    operation_edges: list[OperationEdge] = []
    for row in fetch(_EDGES, [window.start_ns, window.end_ns]):
        per_operation, caller, caller_op, callee, callee_op = row[:5]
        kind = EdgeKind(row[5])
        stats = EdgeStats(
            calls=int(row[6]),
            errors=int(row[7]),
            latency=_required(percentiles(row[8])),
            queue_dwell=percentiles(row[9]) if kind is EdgeKind.MESSAGE else None,
        )
        if per_operation:
            operation_edges.append(OperationEdge(caller, caller_op, callee, callee_op, kind, stats))
        else:
            edges.append(ServiceEdge(caller, callee, kind, stats))
    return ServiceMap(
        window=window,
        services=tuple(OperationRed(row[0], "", red_stats(*row[1:4])) for row in service_rows),
        edges=tuple(edges),
        operation_edges=tuple(operation_edges),
    )


def _required(value: Percentiles | None) -> Percentiles:
    # Every edge row counts at least one pair, so its latency percentiles exist.
    if value is None:
        raise ValueError("an edge without latency: the store returned an empty group")
    return value
