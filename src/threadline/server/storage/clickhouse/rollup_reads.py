"""Fleet views answered from the ClickHouse rollups (``rollup_schema`` says what they hold).

Each read sums the delta rows of every key over the whole minutes covering the
window (``sum ... GROUP BY``: parts not merged yet answer the same) and merges the
latency buckets in Python, reading percentiles from the merged histogram
(``analysis/sketch.py``), as the DuckDB store's ``rollup_reads`` does: the two give
the same answers for the same spans. Synthetic journeys' spans and calls are left
out by their key column (``synthetic = 0``).
"""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import (
    CappedService,
    EdgeKind,
    OperationEdge,
    OperationRed,
    RedStats,
    ServiceEdge,
    ServiceMap,
    ServiceRed,
    TimeWindow,
)
from threadline.server.analysis import sketch
from threadline.server.metric_rows import EdgeSlot, MetricRows, OperationSlot, SlotExemplar
from threadline.server.storage.clickhouse import schema
from threadline.server.storage.clickhouse.rollup_schema import (
    EDGES,
    ERROR,
    EXEMPLARS,
    MINUTE_NS,
    NAMES,
    OPERATION_CAP,
    OPERATIONS,
    slot_sql,
)
from threadline.server.storage.clickhouse.tables import Fetch, Tables
from threadline.server.storage.red_rows import (
    Tally,
    edge_stats,
    service_red_from_rows,
    slots_from_ranks,
)

_MINUTES: Final = "minute >= {first:Int64} AND minute < {last:Int64}"
# The value a sketch bucket stands for (``sketch.bucket_value``), for edge duration sums.
_BUCKET_VALUE: Final = (
    f"if(bucket = {sketch.ZERO_BUCKET}, 0.0,"
    f" 2 * pow({sketch.GAMMA!r}, bucket) / ({sketch.GAMMA!r} + 1))"
)


def _table(t: Tables, name: str) -> str:
    return f"{schema.quote(t.database)}.{name}"


def minutes(window: TimeWindow) -> dict[str, object]:
    """The whole minutes covering ``window``: rollup reads widen windows to them."""
    return {"first": window.start_ns // MINUTE_NS, "last": -(-window.end_ns // MINUTE_NS)}


def _operation_rows(t: Tables, extra: str = "", *, keys: str = "service, operation") -> str:
    """Rows of ``keys``, bucket, spans, errors."""
    return f"""SELECT {keys}, bucket, sum(spans), sumIf(spans, status = '{ERROR}')
FROM {_table(t, OPERATIONS)}
WHERE {_MINUTES} AND synthetic = 0{extra}
GROUP BY ALL"""


def operation_red(
    fetch: Fetch, t: Tables, window: TimeWindow, service: str | None
) -> list[OperationRed]:
    params = minutes(window)
    extra = ""
    if service is not None:
        extra, params = " AND service = {service:String}", {**params, "service": service}
    tallies: dict[tuple[str, str], Tally] = {}
    for svc, operation, bucket, spans, errors in fetch(_operation_rows(t, extra), params):
        tallies.setdefault((str(svc), str(operation)), Tally()).add(
            int(bucket), int(spans), int(errors)
        )
    return [
        OperationRed(key[0], key[1], tallies[key].stats())
        for key in sorted(tallies)
        if tallies[key].requests
    ]


def _slot_ranks(t: Tables, extra: str) -> str:
    """Each slot's figures in one row (``red_rows.slots_from_ranks``), as the DuckDB
    store finds them (``duckdb/rollup_reads.py``): the slot's (bucket) sums with their
    running count in bucket order, and of each quantile ``{qK:Float64}`` the buckets
    whose running count first passes the rank of its order statistic (computed in
    double precision as ``sketch.order_statistics`` does) and the next rank, NULL where
    there is none (``minOrNullIf``: ClickHouse's ``minIf`` gives 0). A series sends one
    row a slot."""
    count = len(sketch.QUANTILES)
    ranks = ", ".join(
        f"toInt64(floor({{q{k}:Float64}} * (total - 1))) AS r{k}" for k in range(count)
    )
    found = ", ".join(
        f"minOrNullIf(bucket, seen > r{k}), minOrNullIf(bucket, seen > r{k} + 1)"
        for k in range(count)
    )
    return f"""WITH pairs AS (
    SELECT intDiv(minute, {{per:Int64}}) AS slot, bucket, toInt64(sum(spans)) AS n,
           toInt64(sumIf(spans, status = '{ERROR}')) AS e
    FROM {_table(t, OPERATIONS)}
    WHERE {_MINUTES} AND synthetic = 0{extra}
    GROUP BY slot, bucket),
running AS (
    SELECT slot, bucket, n, e,
           sum(n) OVER (PARTITION BY slot ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS seen,
           sum(n) OVER (PARTITION BY slot) AS total
    FROM pairs),
ranked AS (SELECT *, {ranks} FROM running)
SELECT slot, any(total), sum(e), min(n), {found} FROM ranked GROUP BY slot"""


def service_red(
    fetch: Fetch,
    t: Tables,
    service: str,
    window: TimeWindow,
    operation: str | None,
    bucket_ns: int | None,
) -> ServiceRed:
    """``Store.service_red`` from the rollups; ``bucket_ns`` must be whole minutes."""
    if bucket_ns is not None and (bucket_ns < MINUTE_NS or bucket_ns % MINUTE_NS):
        raise ValueError("rollup series need buckets of whole minutes")
    if bucket_ns is not None and (window.start_ns % bucket_ns or window.end_ns % bucket_ns):
        raise ValueError("a bucketed window must start and end on bucket boundaries")
    params: dict[str, object] = {**minutes(window), "service": service}
    extra = " AND service = {service:String}"
    if operation is not None:
        extra += " AND operation = {operation:String}"
        params["operation"] = operation
    slots: dict[int, RedStats] = {}
    if bucket_ns is not None:
        quantiles = {f"q{k}": q for k, q in enumerate(sketch.QUANTILES)}
        slots = slots_from_ranks(
            fetch(_slot_ranks(t, extra), {**params, **quantiles, "per": bucket_ns // MINUTE_NS})
        )
    return service_red_from_rows(
        service,
        operation,
        window,
        bucket_ns,
        fetch(_operation_rows(t, extra, keys="operation"), params),
        slots,
    )


def service_map(fetch: Fetch, t: Tables, window: TimeWindow) -> ServiceMap:
    params = minutes(window)
    services: dict[str, Tally] = {}
    for svc, _operation, bucket, spans, errors in fetch(_operation_rows(t), params):
        services.setdefault(str(svc), Tally()).add(int(bucket), int(spans), int(errors))
    rows = fetch(
        f"""SELECT caller, caller_operation, callee, callee_operation, kind, measure, bucket,
       sum(calls), sum(errors)
FROM {_table(t, EDGES)} WHERE {_MINUTES} AND synthetic = 0
GROUP BY caller, caller_operation, callee, callee_operation, kind, measure, bucket""",
        params,
    )
    by_operation: dict[tuple[str, str, str, str, str], tuple[Tally, Tally]] = {}
    by_service: dict[tuple[str, str, str], tuple[Tally, Tally]] = {}
    for caller, caller_op, callee, callee_op, kind, measure, bucket, calls, errors in rows:
        side = 1 if measure == "dwell" else 0
        values = (int(bucket), int(calls), int(errors))
        by_operation.setdefault(
            (str(caller), str(caller_op), str(callee), str(callee_op), str(kind)),
            (Tally(), Tally()),
        )[side].add(*values)
        by_service.setdefault((str(caller), str(callee), str(kind)), (Tally(), Tally()))[side].add(
            *values
        )
    return ServiceMap(
        window=window,
        services=tuple(
            OperationRed(s, "", services[s].stats())
            for s in sorted(services)
            if services[s].requests
        ),
        edges=tuple(
            ServiceEdge(key[0], key[1], EdgeKind(key[2]), edge_stats(*by_service[key]))
            for key in sorted(by_service)
            if by_service[key][0].requests > 0
        ),
        operation_edges=tuple(
            OperationEdge(
                key[0], key[1], key[2], key[3], EdgeKind(key[4]), edge_stats(*by_operation[key])
            )
            for key in sorted(by_operation, key=lambda k: (k[0], k[2], k[4], k[1], k[3]))
            if by_operation[key][0].requests > 0
        ),
    )


def capped_services(fetch: Fetch, t: Tables) -> list[CappedService]:
    rows = fetch(
        f"SELECT service, uniqExact(operation) AS kept FROM {_table(t, NAMES)}"
        " GROUP BY service HAVING kept >= {cap:UInt64} ORDER BY service",
        {"cap": OPERATION_CAP},
    )
    return [CappedService(service=str(s), kept_operations=int(n)) for s, n in rows]


def metric_rows(fetch: Fetch, t: Tables, first_minute: int, last_minute: int) -> MetricRows:
    params = {"first": first_minute, "last": last_minute}
    operations = fetch(
        f"""SELECT service, operation, {slot_sql("bucket")} AS slot, sum(spans) AS n,
       sumIf(spans, status = '{ERROR}'), sum(duration_sum)
FROM {_table(t, OPERATIONS)} WHERE {_MINUTES} AND synthetic = 0
GROUP BY service, operation, slot HAVING n != 0
ORDER BY service, operation, slot""",
        params,
    )
    edges = fetch(
        f"""SELECT caller, callee, kind, {slot_sql("bucket")} AS slot, sum(calls) AS n,
       sum(errors), sum(calls * {_BUCKET_VALUE})
FROM {_table(t, EDGES)} WHERE {_MINUTES} AND synthetic = 0 AND measure = 'latency'
GROUP BY caller, callee, kind, slot HAVING n != 0
ORDER BY caller, callee, kind, slot""",
        params,
    )
    return MetricRows(
        operations=tuple(
            OperationSlot(str(s), str(o), int(k), int(n), int(e), int(d))
            for s, o, k, n, e, d in operations
        ),
        edges=tuple(
            EdgeSlot(str(a), str(b), str(kind), int(k), int(n), int(e), float(d))
            for a, b, kind, k, n, e, d in edges
        ),
    )


def exemplars(fetch: Fetch, t: Tables, first_minute: int, last_minute: int) -> list[SlotExemplar]:
    """The newest example per service × operation × slot; per minute and key, the
    first insert's example (the highest ``first``) whatever merges have run."""
    rows = fetch(
        f"""SELECT service, operation, slot, example.1, example.2, example.3 FROM (
    SELECT minute, service, operation, slot,
           argMax((trace_id, duration_ns, start_ns), first) AS example
    FROM {_table(t, EXEMPLARS)} WHERE {_MINUTES}
    GROUP BY minute, service, operation, slot
)
ORDER BY service, operation, slot, minute DESC, example.3 DESC, example.1
LIMIT 1 BY service, operation, slot""",
        {"first": first_minute, "last": last_minute},
    )
    return [
        SlotExemplar(str(s), str(o), int(k), str(tr), int(d), int(b)) for s, o, k, tr, d, b in rows
    ]
