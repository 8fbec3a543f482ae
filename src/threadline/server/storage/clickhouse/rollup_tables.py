"""The ClickHouse tables behind trace groups, propagation health and SLO reads (schema version 2).

Kept on the insert path by materialized views, from the inserted block alone:

- ``request_rollup`` (``SummingMergeTree``): minute × service × operation × status ×
  latency bucket × ``root`` (no parent) × ``served`` (SERVER or CONSUMER) ×
  ``unparented`` (no parent and no link) × ``synthetic`` (``journey.synthetic=true``):
  spans. Entry spans (``served`` or ``root``) of user traffic only. Requests and
  errors of an operation, the latency histogram of the SLOs and of trace groups,
  the roots of whole traces and the entries of propagation health are its sums.
- ``trace_rollup`` (``AggregatingMergeTree``): one row per trace and inserted block,
  merged by ``trace_id`` when read: first start, last end, smallest session id, the
  root's service and operation, error spans, services touched, synthetic. The
  journey SLO reads sessions from it, never spans.

Kept by the writer after the insert (``pair_rollups``), since they need other spans
of the trace (or of other traces): ``pair_rollup`` (caller → callee calls per minute
of the callee, kind, latency bucket, status, retried, synthetic), ``hop_rollup``
(message hops: producer → consumer per destination, in another trace or not, linked
or not, with the trace ids of one such hop as an example) and ``orphan_spans``
(spans whose parent is not stored near them, a row ``+1`` when found, ``-1`` when
the parent arrives or the span is deleted).
They read the batch from the writer's own partition of ``staged_spans``
(``staging``), the one staging every count after an insert reads.

Every value column is a sum of signed deltas: a deletion inserts the negative of
what it removes (``pair_rollups.forget_*``), and ``SummingMergeTree`` drops a row
whose sums reach zero when it merges; trace summaries go by lightweight ``DELETE``.
Reads always ``GROUP BY`` (parts not merged yet hold several rows of a key).

Operation names are kept as sent: this store does not cap them (the DuckDB store's
``(other)`` bucket is not reproduced here).
"""

from __future__ import annotations

from typing import Final

from threadline.conventions import (
    JOURNEY_SYNTHETIC,
    MESSAGING_DESTINATION,
    MESSAGING_MESSAGE_ID,
    SDK_STATS_SPAN,
    SYNTHETIC_TRUE,
)
from threadline.server.analysis import sketch
from threadline.server.storage.clickhouse.schema import SPANS, START_TIME, quote

REQUEST_ROLLUP: Final = "request_rollup"
REQUEST_ROLLUP_MV: Final = "request_rollup_mv"
TRACE_ROLLUP: Final = "trace_rollup"
TRACE_ROLLUP_MV: Final = "trace_rollup_mv"
PAIR_ROLLUP: Final = "pair_rollup"
HOP_ROLLUP: Final = "hop_rollup"
ORPHAN_SPANS: Final = "orphan_spans"

# The tables, each with the key a cluster shards it by: rows of one trace (its
# summary, its orphans) on the trace's shard, beside its spans;
# counts per minute on any shard, since every read sums a key across shards.
SHARDING_KEYS: Final[dict[str, str]] = {
    REQUEST_ROLLUP: "rand()",
    TRACE_ROLLUP: "cityHash64(trace_id)",
    PAIR_ROLLUP: "rand()",
    HOP_ROLLUP: "rand()",
    ORPHAN_SPANS: "cityHash64(trace_id)",
}
DATA_TABLES: Final = tuple(SHARDING_KEYS)

MINUTE_NS: Final = 60_000_000_000
# How far apart a caller's and its callee's (or a producer's and its consumer's)
# start times may be for the pair to count: the DuckDB store's horizon.
PAIR_HORIZON_NS: Final = 15 * MINUTE_NS

ERROR: Final = "error"
USER_TRAFFIC: Final = f"name != '{SDK_STATS_SPAN}'"
NO_PARENT: Final = "coalesce(parent_span_id, '') = ''"
ENTRY: Final = f"((kind IN ('server', 'consumer') OR {NO_PARENT}) AND {USER_TRAFFIC})"
MINUTE: Final = f"intDiv(start_ns, {MINUTE_NS})"


def bucket(duration: str) -> str:
    """``sketch.bucket_index`` in SQL: the same ``ceil(ln d / ln γ)`` in doubles."""
    return (
        f"if({duration} <= 0, {sketch.ZERO_BUCKET},"
        f" toInt32(ceil(log(toFloat64({duration})) / {sketch.LOG_GAMMA!r})))"
    )


def _attribute(key: str, column: str = "attributes") -> str:
    """The JSON text of the attribute ``key`` ('' when absent); keys are fixed text."""
    return f"{column}['{key}']"


def synthetic(alias: str = "") -> str:
    """A span of a synthetic journey: ``journey.synthetic`` is ``"true"`` or ``true``."""
    column = f"{alias}.attributes" if alias else "attributes"
    value = _attribute(JOURNEY_SYNTHETIC, column)
    return f"({value} IN ('\"{SYNTHETIC_TRUE}\"', '{SYNTHETIC_TRUE}'))"


def _number(key: str) -> str:
    """The attribute as an integer (a JSON number or a string of one), 0 when not one."""
    return f"toInt64OrZero(trim(BOTH '\"' FROM {_attribute(key)}))"


# The columns of a span as the pair statements read it from ``spans``.
PAIR_SELECT: Final = f"""trace_id, span_id, coalesce(parent_span_id, '') AS parent_span_id,
       service_name, name, kind, start_ns, end_ns, duration_ns, status, links,
       toUInt8(kind = 'client' AND {_number("http.request.resend_count")} > 0) AS resent,
       toUInt8(kind = 'consumer' AND {_number("threadline.delivery.attempt")} > 1) AS redelivered,
       toUInt8({synthetic()}) AS synthetic,
       {_attribute(MESSAGING_MESSAGE_ID)} AS message_id,
       if(startsWith({_attribute(MESSAGING_DESTINATION)}, '"'),
          JSONExtractString({_attribute(MESSAGING_DESTINATION)}),
          {_attribute(MESSAGING_DESTINATION)}) AS destination"""


def request_delta(source: str, sign: int) -> str:
    """The ``request_rollup`` rows of the spans in ``source`` (a table or subquery)."""
    return f"""SELECT {MINUTE} AS minute, service_name AS service, name AS operation, status,
       {bucket("duration_ns")} AS bucket, toUInt8({NO_PARENT}) AS root,
       toUInt8(kind IN ('server', 'consumer')) AS served,
       toUInt8({NO_PARENT} AND links = '[]') AS unparented, toUInt8({synthetic()}) AS synthetic,
       toInt64({sign} * count()) AS spans
FROM {source}
WHERE {ENTRY}
GROUP BY minute, service, operation, status, bucket, root, served, unparented, synthetic"""


_TRACE_SELECT: Final = f"""SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,
       min(nullIf(coalesce(session_id, ''), '')) AS session_id,
       maxIf(concat(service_name, '\\x1f', name), {NO_PARENT}) AS root,
       toInt64(countIf(status = '{ERROR}')) AS errors,
       groupUniqArray(toString(service_name)) AS services,
       toUInt8(max({synthetic()})) AS synthetic
FROM {{source}}
WHERE trace_id != '' AND {USER_TRAFFIC}
GROUP BY trace_id"""


def trace_rows(source: str) -> str:
    """The ``trace_rollup`` rows of the spans in ``source``, one per trace."""
    return _TRACE_SELECT.format(source=source)


def statements(database: str, *, ttl_days: int | None = None) -> list[str]:
    """The DDL of these tables and their views in ``database``, in order (idempotent)."""
    db = quote(database)
    ttl = _ttl(ttl_days)
    minute_ttl = f"TTL toDateTime(minute * 60) + toIntervalDay({ttl_days})\n" if ttl_days else ""
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.{REQUEST_ROLLUP} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    operation LowCardinality(String) CODEC(ZSTD(1)),
    status LowCardinality(String) CODEC(ZSTD(1)),
    bucket Int32 CODEC(ZSTD(1)),
    root UInt8 CODEC(ZSTD(1)),
    served UInt8 CODEC(ZSTD(1)),
    unparented UInt8 CODEC(ZSTD(1)),
    synthetic UInt8 CODEC(ZSTD(1)),
    spans Int64 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree(spans)
PARTITION BY intDiv(minute, 1440 * 7)
ORDER BY (service, operation, minute, status, bucket, root, served, unparented, synthetic)
{minute_ttl}""".rstrip(),
        _view(db, REQUEST_ROLLUP_MV, REQUEST_ROLLUP) + f"""{request_delta(f"{db}.{SPANS}", 1)}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{TRACE_ROLLUP} (
    trace_id String CODEC(ZSTD(1)),
    start_ns SimpleAggregateFunction(min, Int64) CODEC(ZSTD(1)),
    end_ns SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1)),
    session_id SimpleAggregateFunction(min, Nullable(String)) CODEC(ZSTD(1)),
    root SimpleAggregateFunction(max, String) CODEC(ZSTD(1)),
    errors SimpleAggregateFunction(sum, Int64) CODEC(ZSTD(1)),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    synthetic SimpleAggregateFunction(max, UInt8) CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate({START_TIME})
ORDER BY trace_id
{ttl}""".rstrip(),
        _view(db, TRACE_ROLLUP_MV, TRACE_ROLLUP) + f"""{trace_rows(f"{db}.{SPANS}")}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{PAIR_ROLLUP} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    caller LowCardinality(String) CODEC(ZSTD(1)),
    callee LowCardinality(String) CODEC(ZSTD(1)),
    kind LowCardinality(String) CODEC(ZSTD(1)),
    bucket Int32 CODEC(ZSTD(1)),
    status LowCardinality(String) CODEC(ZSTD(1)),
    retried UInt8 CODEC(ZSTD(1)),
    synthetic UInt8 CODEC(ZSTD(1)),
    calls Int64 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree(calls)
PARTITION BY intDiv(minute, 1440 * 7)
ORDER BY (caller, callee, minute, kind, bucket, status, retried, synthetic)
{minute_ttl}""".rstrip(),
        f"""CREATE TABLE IF NOT EXISTS {db}.{HOP_ROLLUP} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    producer LowCardinality(String) CODEC(ZSTD(1)),
    consumer LowCardinality(String) CODEC(ZSTD(1)),
    destination String CODEC(ZSTD(1)),
    elsewhere UInt8 CODEC(ZSTD(1)),
    linked UInt8 CODEC(ZSTD(1)),
    messages Int64 CODEC(ZSTD(1)),
    producer_trace_id String CODEC(ZSTD(1)),
    consumer_trace_id String CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree(messages)
PARTITION BY intDiv(minute, 1440 * 7)
ORDER BY (producer, consumer, destination, minute, elsewhere, linked)
{minute_ttl}""".rstrip(),
        f"""CREATE TABLE IF NOT EXISTS {db}.{ORPHAN_SPANS} (
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    start_ns Int64 CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    sign Int64 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree(sign)
PARTITION BY toDate({START_TIME})
ORDER BY (trace_id, span_id, parent_span_id, start_ns, service)
{ttl}""".rstrip(),
    ]


def _view(db: str, view: str, table: str) -> str:
    return f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} TO {db}.{table} AS\n"


def _ttl(days: int | None) -> str:
    if days is None:
        return ""
    return f"TTL toDateTime({START_TIME}) + toIntervalDay({days})\n"
