"""Writing the ClickHouse rollups: what the insert's views cannot count, and deletions.

Entry spans and exemplars are counted by materialized views on the insert itself
(``rollup_schema``). Two things need more than the inserted block:

- **Names.** The operation cap is first come per service (``OPERATION_CAP``, then
  ``OTHER``), decided against the names kept so far: ``staging.Counter`` registers the
  batch's new names, sorted, up to the cap, *before* the spans' insert, so the views
  read the kept names when they count. The rule and its order are DuckDB's, so the
  two stores keep the same names for the same arrivals.
- **Edges.** A call is a parent/child pair and either side may arrive first. After
  the insert, ``count_edges`` joins the spans of the batch's traces that started
  within ``PAIR_HORIZON_NS`` of the batch (the time bound prunes partitions) and
  counts each pair with at least one side in the batch: each pair once, when its
  second side arrives, in the minute of the callee, as DuckDB counts it. The batch
  is the writer's own partition of ``staged_spans`` (``staging``, ``staged``).

Deletions subtract before the spans go: a deleted trace's entry spans and its pairs
(all within the trace) are appended negated and its exemplars deleted; retention
deletes the rollup minutes before the cutoff's and subtracts the spans of the
cutoff's own minute that it deletes. ``rebuild`` fills the tables from the stored
spans (schema version 2 on a version 1 database).

ClickHouse has no transaction over two inserts: the spans' insert (with its views)
and the pair count are two statements. If the second fails the batch's future
fails and the sender retries; the retried spans are stored already and dropped, so
that batch's edges stay uncounted (the spans and their entry counts are kept).
Writers of several servers registering names at the same moment each count the
names kept before them, so a service can pass the cap by one batch's new names.
Several writers and a writer killed mid-batch: ``staging``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import EdgeKind
from threadline.server.storage.clickhouse import schema
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.rollup_schema import (
    COUNT_TABLES,
    EDGES,
    ERROR,
    EXEMPLARS,
    MINUTE_NS,
    NAMES,
    OPERATION_CAP,
    OPERATIONS,
    OTHER,
    PAIR_HORIZON_NS,
    bucket_sql,
    kept_names,
    operation_delta,
    synthetic_in_map,
)
from threadline.server.storage.clickhouse.staged import Batch
from threadline.server.storage.clickhouse.tables import Fetch, Tables

logger = logging.getLogger(__name__)

Command = Callable[[str, Mapping[str, object]], None]

DAY_NS: Final = 1440 * MINUTE_NS
_EDGE_COLUMNS: Final = (
    "minute, caller, caller_operation, callee, callee_operation, kind, measure, synthetic,"
    " bucket, calls, errors"
)
_OPERATION_COLUMNS: Final = (
    "minute, service, operation, status, synthetic, bucket, spans, duration_sum"
)


def _db(t: Tables) -> str:
    return schema.quote(t.database)


def register_names(t: Tables, source: str) -> str:
    """Keep the new names of ``source`` (``service_name``, ``name`` columns), sorted,
    up to ``OPERATION_CAP`` per service with the names kept already."""
    names = f"{_db(t)}.{NAMES}"
    return f"""INSERT INTO {names} (service, operation)
SELECT service, operation FROM (
    SELECT n.service AS service, n.operation AS operation,
           k.known + row_number() OVER (PARTITION BY n.service ORDER BY n.operation) AS place
    FROM (SELECT DISTINCT service_name AS service, name AS operation FROM {source} AS x
          WHERE x.name != '{SDK_STATS_SPAN}') AS n
    LEFT ANTI JOIN {kept_names(names)} AS r ON r.service = n.service AND r.operation = n.operation
    LEFT JOIN (SELECT service, toUInt64(uniqExact(operation)) AS known FROM {names}
               GROUP BY service) AS k ON k.service = n.service
)
WHERE place <= {OPERATION_CAP}"""


def _callees(t: Tables, condition: str) -> str:
    return f"""(SELECT trace_id, span_id, parent_span_id, service_name, name, kind, start_ns,
        duration_ns, status, toUInt8({synthetic_in_map("attributes")}) AS synthetic
    FROM {t.spans}
    WHERE kind IN ('server', 'consumer') AND coalesce(parent_span_id, '') != ''
      AND {condition})"""


def _callers(t: Tables, condition: str) -> str:
    return f"""(SELECT trace_id, span_id, service_name, name, kind, start_ns, end_ns
    FROM {t.spans} WHERE {condition})"""


def edge_delta(t: Tables, callees: str, callers: str, sign: int, pair_filter: str = "") -> str:
    """Count the pairs of the relations ``callees`` and ``callers`` into ``rollup_edges``.

    The kinds are the service map's: a CLIENT parent of a SERVER span is a call, a
    PRODUCER parent of a CONSUMER span a message, any other parent of a SERVER span
    in another service an inferred call; a pair whose starts lie more than the
    horizon apart is no edge. A message counts its dwell (consumer start − producer
    end) beside the latency (the callee's duration).
    """
    kept = kept_names(f"{_db(t)}.{NAMES}")
    return f"""INSERT INTO {_db(t)}.{EDGES} ({_EDGE_COLUMNS})
SELECT minute, caller, caller_operation, callee, callee_operation, edge_kind, m.1, synthetic,
       m.2, {sign} * toInt64(count()), {sign} * toInt64(sum(m.3))
FROM (
    SELECT x.minute AS minute, x.caller AS caller,
           if(a.kept = 1, x.caller_name, '{OTHER}') AS caller_operation,
           x.callee AS callee, if(b.kept = 1, x.callee_name, '{OTHER}') AS callee_operation,
           x.edge_kind AS edge_kind, x.synthetic AS synthetic,
           arrayJoin(if(x.edge_kind = '{EdgeKind.MESSAGE.value}',
               [('latency', {bucket_sql("x.duration_ns")}, x.failed),
                ('dwell', {bucket_sql("x.dwell_ns")}, toUInt8(0))],
               [('latency', {bucket_sql("x.duration_ns")}, x.failed)])) AS m
    FROM (
        SELECT intDiv(c.start_ns, {MINUTE_NS}) AS minute,
               p.service_name AS caller, p.name AS caller_name,
               c.service_name AS callee, c.name AS callee_name,
               multiIf(p.kind = 'client' AND c.kind = 'server', '{EdgeKind.CALL.value}',
                       p.kind = 'producer' AND c.kind = 'consumer', '{EdgeKind.MESSAGE.value}',
                       c.kind = 'server' AND p.service_name != c.service_name,
                       '{EdgeKind.INFERRED.value}', '') AS edge_kind,
               c.duration_ns AS duration_ns, toUInt8(c.status = '{ERROR}') AS failed,
               c.start_ns - p.end_ns AS dwell_ns, c.synthetic AS synthetic
        FROM {callees} AS c
        INNER JOIN {callers} AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
        WHERE abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS} AND edge_kind != ''{pair_filter}
    ) AS x
    LEFT JOIN {kept} AS a ON a.service = x.caller AND a.operation = x.caller_name
    LEFT JOIN {kept} AS b ON b.service = x.callee AND b.operation = x.callee_name
)
GROUP BY minute, caller, caller_operation, callee, callee_operation, edge_kind, m.1,
         synthetic, m.2
SETTINGS distributed_product_mode = 'local'"""


def _spans(t: Tables, condition: str) -> str:
    """Stored spans matching ``condition``, in the columns ``operation_delta`` reads."""
    return (
        "(SELECT start_ns, service_name, name, kind, parent_span_id, status, duration_ns,"
        f" attributes FROM {t.spans} WHERE {condition})"
    )


def operation_insert(t: Tables, condition: str, sign: int) -> str:
    """Count the stored entry spans matching ``condition`` (times ``sign``)."""
    select = operation_delta(_db(t), _spans(t, condition), synthetic_in_map("s.attributes"), sign)
    return f"INSERT INTO {_db(t)}.{OPERATIONS} ({_OPERATION_COLUMNS})\n{select}"


def count_edges(command: Command, t: Tables, batch: Batch, low_ns: int, high_ns: int) -> None:
    """After the spans' insert: count the pairs with a side in ``batch`` (its starts
    within ``low_ns`` … ``high_ns``) and the other side in it too or settled
    (``staged``: a side in another writer's batch in flight is left to that count)."""
    near = (
        f"trace_id IN {batch.traces} AND start_ns BETWEEN {{low:Int64}} AND {{high:Int64}}"
        f" AND {batch.settled()}"
    )
    in_batch = f" AND ({batch.member('c')} OR {batch.member('p')})"
    statement = edge_delta(t, _callees(t, near), _callers(t, near), 1, in_batch)
    params = {**batch.params, "low": low_ns - PAIR_HORIZON_NS, "high": high_ns + PAIR_HORIZON_NS}
    command(statement, params)


_IDS: Final = "trace_id IN {ids:Array(String)}"


def forget_traces(fetch: Fetch, command: Command, t: Tables, trace_ids: Sequence[str]) -> None:
    """Subtract the traces' spans (about to be deleted whole) from the rollups."""
    ids = {"ids": list(trace_ids)}
    command(operation_insert(t, _IDS, -1), ids)
    command(edge_delta(t, _callees(t, _IDS), _callers(t, _IDS), -1), ids)
    if fetch(f"SELECT 1 FROM {_db(t)}.{EXEMPLARS} WHERE {_IDS} LIMIT 1", ids):
        command(f"DELETE FROM {t.parts_of(EXEMPLARS)} WHERE {_IDS}", ids)


def names_of(fetch: Fetch, t: Tables, trace_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The (service, span name) pairs of the traces' spans."""
    rows = fetch(
        f"SELECT DISTINCT service_name, name FROM {t.spans} WHERE {_IDS}",
        {"ids": list(trace_ids)},
    )
    return [(str(s), str(n)) for s, n in rows]


def forget_names(
    fetch: Fetch, command: Command, t: Tables, names: Sequence[tuple[str, str]]
) -> None:
    """Drop the kept names no stored span has any more (after an erasure: a span name
    may carry what the user did), once the erased spans are deleted."""
    if not names:
        return
    pairs = {"names": [tuple(pair) for pair in names]}
    used = fetch(
        f"SELECT DISTINCT service_name, name FROM {t.spans}"
        " WHERE (service_name, name) IN {names:Array(Tuple(String, String))}",
        pairs,
    )
    gone = sorted(set(names) - {(str(s), str(n)) for s, n in used})
    if gone:
        command(
            f"DELETE FROM {t.parts_of(NAMES)}"
            " WHERE (service, operation) IN {gone:Array(Tuple(String, String))}",
            {"gone": [tuple(pair) for pair in gone]},
        )


def forget_before(fetch: Fetch, command: Command, t: Tables, cutoff_ns: int) -> None:
    """Drop the rollup minutes retention removes; subtract the spans of the cutoff's
    own minute it deletes. Edge rows stay with the callee's minute."""
    cutoff_minute = cutoff_ns // MINUTE_NS
    for table in COUNT_TABLES:
        params = {"m": cutoff_minute}
        if fetch(f"SELECT 1 FROM {_db(t)}.{table} WHERE minute < {{m:Int64}} LIMIT 1", params):
            command(f"DELETE FROM {t.parts_of(table)} WHERE minute < {{m:Int64}}", params)
    cutoff = {"cutoff": cutoff_ns}
    before = "start_ns < {cutoff:Int64}"
    if fetch(f"SELECT 1 FROM {_db(t)}.{EXEMPLARS} WHERE {before} LIMIT 1", cutoff):
        command(f"DELETE FROM {t.parts_of(EXEMPLARS)} WHERE {before}", cutoff)
    if cutoff_ns % MINUTE_NS == 0:
        return
    doomed = "start_ns >= {low:Int64} AND start_ns < {cutoff:Int64}"
    params = {"low": cutoff_minute * MINUTE_NS, "cutoff": cutoff_ns}
    command(operation_insert(t, doomed, -1), params)
    traces = f"trace_id IN (SELECT trace_id FROM {t.spans} WHERE {doomed})"
    command(edge_delta(t, _callees(t, doomed), _callers(t, traces), -1), params)


def rebuild(connection: Connection, t: Tables) -> None:
    """Count every stored span into emptied rollups, a stored day at a time (logged).

    Names are registered day by day, in order, so the names kept are those of the
    earliest days, as if the spans had arrived in time order.
    """
    for table in (OPERATIONS, EDGES, NAMES, EXEMPLARS):
        connection.command(f"TRUNCATE TABLE {t.parts_of(table)}", doing="emptying the rollups")
    days = [
        int(row[0])
        for row in connection.rows(
            f"SELECT DISTINCT intDiv(start_ns, {DAY_NS}) AS day FROM {t.spans} ORDER BY day",
            doing="finding the stored days",
        )
    ]
    began = time.monotonic()
    for done, day in enumerate(days, start=1):
        params = {"low": day * DAY_NS, "high": (day + 1) * DAY_NS}
        day_spans = "start_ns >= {low:Int64} AND start_ns < {high:Int64}"
        connection.command(
            register_names(t, _spans(t, day_spans)), params, doing="keeping operation names"
        )
        connection.command(operation_insert(t, day_spans, 1), params, doing="counting requests")
        callers = (
            f"trace_id IN (SELECT trace_id FROM {t.spans} WHERE {day_spans})"
            " AND start_ns >= {near_low:Int64} AND start_ns < {near_high:Int64}"
        )
        near = {
            **params,
            "near_low": params["low"] - PAIR_HORIZON_NS,
            "near_high": params["high"] + PAIR_HORIZON_NS,
        }
        connection.command(
            edge_delta(t, _callees(t, day_spans), _callers(t, callers), 1),
            near,
            doing="counting calls",
        )
        logger.info(
            "building the rollups from stored spans: %d of %d days done (%.1f s)",
            done,
            len(days),
            time.monotonic() - began,
        )
