"""Fleet views answered from the rollups (see ``rollups`` for what the tables hold).

Every read sums the delta rows of each key over the whole minutes covering the
window, merges the latency buckets and reads percentiles from the merged histogram
(``analysis/sketch.py``): its cost follows the number of (minute, key, bucket) rows,
not the number of spans. A RED series finds the buckets of each slot's percentiles in
SQL and sends one row a slot (``_SLOT_RANKS``).
"""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import (
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
from threadline.server.storage.duckdb.edge_pairs import SYNTHETIC_DWELL, SYNTHETIC_LATENCY
from threadline.server.storage.duckdb.rollups import EDGES, MINUTE_NS, OPERATIONS
from threadline.server.storage.duckdb.schema import ROLLUP_SYNTHETIC
from threadline.server.storage.duckdb.slo_rollups import SPAN_ROWS
from threadline.server.storage.duckdb.sql import ERROR, Fetch
from threadline.server.storage.red_rows import (
    Tally,
    edge_stats,
    service_red_from_rows,
    slots_from_ranks,
)


def minutes(window: TimeWindow) -> tuple[int, int]:
    """The whole minutes covering ``window``: rollup reads widen windows to them."""
    return window.start_ns // MINUTE_NS, -(-window.end_ns // MINUTE_NS)


# The operations' rollups less what synthetic journeys made (``journey.synthetic=true``,
# counted apart in ``rollup_synthetic`` under the same keys): probes and drills stay
# out of RED and the map's traffic figures. Read with the key columns and ``spans``.
USER_OPERATIONS: Final = f"""(
SELECT minute, service, operation, status, bucket, spans FROM {OPERATIONS}
UNION ALL
SELECT minute, service, operation, status, bucket, -spans FROM {ROLLUP_SYNTHETIC}
WHERE {SPAN_ROWS})"""

_OPERATION_ROWS: Final = f"""
SELECT service, operation, bucket, sum(spans), sum(spans) FILTER (WHERE status = '{ERROR}')
FROM {USER_OPERATIONS}
WHERE minute >= ? AND minute < ?{{extra}}
GROUP BY service, operation, bucket"""


def operation_red(fetch: Fetch, window: TimeWindow, service: str | None) -> list[OperationRed]:
    extra, params = ("", []) if service is None else (" AND service = ?", [service])
    rows = fetch(_OPERATION_ROWS.format(extra=extra), [*minutes(window), *params])
    tallies: dict[tuple[str, str], Tally] = {}
    for svc, operation, bucket, spans, errors in rows:
        tallies.setdefault((svc, operation), Tally()).add(int(bucket), int(spans), int(errors or 0))
    return [
        OperationRed(key[0], key[1], tallies[key].stats())
        for key in sorted(tallies)
        if tallies[key].requests
    ]


# Each slot's figures in one row (``red_rows.slots_from_ranks``): its (slot, bucket) sums
# with their running count in bucket order, and of each quantile of ``sketch.QUANTILES``
# (parameters after the rows' own) the buckets whose running count first passes its
# order statistic's rank and the next rank. A series of minutes sends one row a minute,
# not one a minute and bucket: the buckets per minute grow with the traffic.
_SLOT_RANKS: Final = """
WITH pairs AS (
    SELECT minute // ? AS slot, bucket, sum(spans) AS n,
           sum(spans) FILTER (WHERE status = '{error}') AS e
    FROM {rows} WHERE minute >= ? AND minute < ?{extra}
    GROUP BY ALL),
running AS (
    SELECT *, sum(n) OVER (PARTITION BY slot ORDER BY bucket) AS seen,
           sum(n) OVER (PARTITION BY slot) AS total
    FROM pairs),
ranked AS (SELECT *, {ranks} FROM running)
SELECT slot, any_value(total), sum(e), min(n), {found} FROM ranked GROUP BY slot"""


def _slot_ranks(extra: str) -> str:
    """``_SLOT_RANKS`` with the conditions ``extra`` on the rows; each rank is computed
    in double precision as ``sketch.order_statistics`` computes it."""
    ranks = ", ".join(
        f"floor(?::DOUBLE * (total - 1))::BIGINT AS r{k}" for k in range(len(sketch.QUANTILES))
    )
    found = ", ".join(
        f"min(bucket) FILTER (WHERE seen > r{k}), min(bucket) FILTER (WHERE seen > r{k} + 1)"
        for k in range(len(sketch.QUANTILES))
    )
    return _SLOT_RANKS.format(
        error=ERROR, rows=USER_OPERATIONS, extra=extra, ranks=ranks, found=found
    )


def service_red(
    fetch: Fetch,
    service: str,
    window: TimeWindow,
    operation: str | None,
    bucket_ns: int | None,
) -> ServiceRed:
    """``Store.service_red`` from rollups; ``bucket_ns`` must be whole minutes."""
    if bucket_ns is not None and (bucket_ns < MINUTE_NS or bucket_ns % MINUTE_NS):
        raise ValueError("rollup series need buckets of whole minutes")
    if bucket_ns is not None and (window.start_ns % bucket_ns or window.end_ns % bucket_ns):
        raise ValueError("a bucketed window must start and end on bucket boundaries")
    extra, params = " AND service = ?", [service]
    if operation is not None:
        extra, params = extra + " AND operation = ?", [service, operation]
    first_last = minutes(window)
    slots: dict[int, RedStats] = {}
    if bucket_ns is not None:
        slots = slots_from_ranks(
            fetch(
                _slot_ranks(extra),
                [bucket_ns // MINUTE_NS, *first_last, *params, *sketch.QUANTILES],
            )
        )
    rows = fetch(
        f"SELECT operation, bucket, sum(spans), sum(spans) FILTER (WHERE status = '{ERROR}')"
        f" FROM {USER_OPERATIONS} WHERE minute >= ? AND minute < ?{extra} GROUP BY ALL",
        [*first_last, *params],
    )
    return service_red_from_rows(service, operation, window, bucket_ns, rows, slots)


def service_map(fetch: Fetch, window: TimeWindow) -> ServiceMap:
    first, last = minutes(window)
    services: dict[str, Tally] = {}
    for svc, _operation, bucket, spans, errors in fetch(
        _OPERATION_ROWS.format(extra=""), [first, last]
    ):
        services.setdefault(svc, Tally()).add(int(bucket), int(spans), int(errors or 0))
    rows = fetch(
        f"""SELECT caller, caller_operation, callee, callee_operation, kind, measure, bucket,
       sum(calls), sum(errors)
FROM {EDGES} WHERE minute >= ? AND minute < ?
GROUP BY ALL""",
        [first, last],
    )
    by_operation: dict[tuple[str, str, str, str, str], tuple[Tally, Tally]] = {}
    by_service: dict[tuple[str, str, str], tuple[Tally, Tally]] = {}
    for caller, caller_op, callee, callee_op, kind, measure, bucket, calls, errors in rows:
        # Synthetic journeys' calls are counted under measures of their own: subtracted,
        # they leave the users' traffic (probes and drills stay off the map's figures).
        dwell = measure in ("dwell", SYNTHETIC_DWELL)
        sign = -1 if measure in (SYNTHETIC_LATENCY, SYNTHETIC_DWELL) else 1
        for key, table in (
            ((caller, caller_op, callee, callee_op, kind), by_operation),
            ((caller, callee, kind), by_service),
        ):
            pair = table.setdefault(key, (Tally(), Tally()))  # type: ignore[arg-type]
            pair[1 if dwell else 0].add(int(bucket), sign * int(calls), sign * int(errors or 0))
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
