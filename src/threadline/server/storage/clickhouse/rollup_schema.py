"""The rollup tables of the ClickHouse store (schema version 2) and the SQL they share.

Every row of the count tables is a *delta*, as in the DuckDB store (its
``rollups.py`` explains the design): an insert adds counts, a deletion appends
negative ones, and every read sums a key's rows. ``SummingMergeTree`` is that table
natively: merges add the rows of a key together and drop keys summing to zero, and
reads still ``sum(...) GROUP BY`` so parts not merged yet answer the same.

- ``rollup_operations``: minute × service × operation × status × synthetic × latency
  bucket of entry spans: spans and their duration sum. Fed by
  ``rollup_operations_mv`` from ``spans_incoming`` (the writer drops re-sent spans
  before the insert, so the view sees each span once). ``synthetic`` (a span marked
  ``journey.synthetic=true``) is a key column here, where DuckDB keeps those spans in
  a table of their own to subtract: fleet views read ``synthetic = 0``.
- ``rollup_edges``: minute of the callee × caller service/operation × callee
  service/operation × kind × measure (``latency`` or ``dwell``) × synthetic × bucket:
  calls and errors. A pair needs both spans, which may arrive in different inserts,
  so the writer counts pairs after each insert (``staging.Counter``).
- ``rollup_names``: the operation names the rollups keep, at most ``OPERATION_CAP``
  per service, first come; later names count as ``OTHER``. Registered by the writer
  before the spans' insert, so the view's join sees them.
- ``rollup_exemplars``: one example trace per minute × service × operation ×
  ``/metrics`` slot and insert, fed by ``rollup_exemplars_mv``; ``first`` falls
  with the time of the insert, so ``ReplacingMergeTree(first)`` keeps the first
  insert's example, as DuckDB keeps the first commit's.
- ``staged_spans``: the keys of the spans of the insert being counted, one
  partition per writer (``staging``), dropped once its pairs are counted. Every
  count after the insert reads the batch from here: the edges above and the pair,
  hop and orphan rollups of ``rollup_tables``. A writer killed mid-batch leaves its
  partition behind; ``staged_at`` and the TTL drop it after ``STAGED_TTL_S``.

Tables are partitioned by day of the minute and carry the spans' TTL, so retention
by TTL drops rollup days with the span days.
"""

from __future__ import annotations

from typing import Final

from threadline.conventions import JOURNEY_SYNTHETIC, SDK_STATS_SPAN, SYNTHETIC_TRUE
from threadline.server.aggregates import OTHER_OPERATION, EdgeKind
from threadline.server.analysis import latency_bounds, sketch

OPERATIONS: Final = "rollup_operations"
OPERATIONS_MV: Final = "rollup_operations_mv"
EDGES: Final = "rollup_edges"
NAMES: Final = "rollup_names"
EXEMPLARS: Final = "rollup_exemplars"
EXEMPLARS_MV: Final = "rollup_exemplars_mv"
STAGED: Final = "staged_spans"
# Far longer than any batch is staged (seconds): only a dead writer's keys grow this old.
STAGED_TTL_S: Final = 3600
# The count tables: summed by reads, merged by ``compact``, cut by retention.
COUNT_TABLES: Final = (OPERATIONS, EDGES)
TABLES: Final = (OPERATIONS, EDGES, NAMES, EXEMPLARS, STAGED)
# What ``compact`` merges: counts summing to zero and erased names leave the files.
MERGED: Final = (OPERATIONS, EDGES, NAMES, EXEMPLARS)

MINUTE_NS: Final = 60_000_000_000
# As the DuckDB store's (``duckdb/rollups.py``; a test holds the two equal): the same
# spans give the same rollups on both.
PAIR_HORIZON_NS: Final = 15 * MINUTE_NS
OPERATION_CAP: Final = 500
OTHER: Final = OTHER_OPERATION
ERROR: Final = "error"

_DURABLE: Final = "fsync_after_insert = 1, fsync_part_directory = 1"
_DAY: Final = "intDiv(minute, 1440)"


def entry(alias: str) -> str:
    """Where a service takes a request (span ``alias``): SERVER and CONSUMER spans, and
    a trace's first span, unless it is the SDK's report about itself."""
    return (
        f"(({alias}.kind IN ('server', 'consumer') OR coalesce({alias}.parent_span_id, '') = '')"
        f" AND {alias}.name != '{SDK_STATS_SPAN}')"
    )


def synthetic_in_json(column: str) -> str:
    """The span in ``column`` (JSON text of attributes) is a synthetic journey's: the
    marker's raw JSON is ``true`` or ``"true"``, as DuckDB's ``json_extract_string``
    reads both as ``true``."""
    return (
        f"JSONExtractRaw({column}, '{JOURNEY_SYNTHETIC}')"
        f" IN ('{SYNTHETIC_TRUE}', '\"{SYNTHETIC_TRUE}\"')"
    )


def synthetic_in_map(column: str) -> str:
    """The same for an attribute map of JSON-text values (``spans.attributes``)."""
    return f"{column}['{JOURNEY_SYNTHETIC}'] IN ('{SYNTHETIC_TRUE}', '\"{SYNTHETIC_TRUE}\"')"


def bucket_sql(duration: str) -> str:
    """``sketch.bucket_index`` in ClickHouse: ``ceil(ln d / ln γ)`` in doubles, as DuckDB's."""
    return (
        f"if({duration} <= 0, {sketch.ZERO_BUCKET},"
        f" toInt16(ceil(log(greatest({duration}, 1)) / {sketch.LOG_GAMMA!r})))"
    )


def slot_sql(bucket: str) -> str:
    """``latency_bounds.slot`` in ClickHouse: the ``/metrics`` slot of a sketch bucket."""
    cases = ", ".join(
        f"{bucket} <= {int(limit)}, {index}"
        for index, limit in enumerate(latency_bounds.BOUND_BUCKETS)
    )
    return f"toUInt8(multiIf({cases}, {len(latency_bounds.BOUND_BUCKETS)}))"


def kept_names(names: str) -> str:
    """The kept names as a relation with ``kept = 1``: a name missing from a LEFT JOIN
    on it reads ``kept = 0`` and counts as ``OTHER``."""
    return f"(SELECT DISTINCT service, operation, toUInt8(1) AS kept FROM {names})"


def operation_delta(db: str, source: str, synthetic: str, sign: int) -> str:
    """The SELECT of ``rollup_operations`` rows counting the entry spans of ``source``
    (aliased ``s``); ``synthetic`` tells a synthetic span from its columns."""
    return f"""SELECT intDiv(s.start_ns, {MINUTE_NS}) AS minute, s.service_name AS service,
       if(r.kept = 1, s.name, '{OTHER}') AS operation, s.status AS status,
       toUInt8({synthetic}) AS synthetic, {bucket_sql("s.duration_ns")} AS bucket,
       {sign} * toInt64(count()) AS spans, {sign} * toInt64(sum(s.duration_ns)) AS duration_sum
FROM {source} AS s
LEFT JOIN {kept_names(f"{db}.{NAMES}")} AS r ON r.service = s.service_name AND r.operation = s.name
WHERE {entry("s")}
GROUP BY minute, service, operation, status, synthetic, bucket"""


def _exemplar_select(db: str, incoming: str) -> str:
    """One example per key of an insert block: a failing span first, then the slowest,
    then the least trace id; synthetic journeys' spans are none (``/metrics`` leaves
    them out)."""
    return f"""SELECT minute, service, operation, slot,
       example.1 AS trace_id, example.2 AS duration_ns, example.3 AS start_ns,
       toUInt64(18446744073709551615) - toUInt64(toUnixTimestamp64Nano(now64(9))) AS first
FROM (
    SELECT intDiv(s.start_ns, {MINUTE_NS}) AS minute, s.service_name AS service,
           if(r.kept = 1, s.name, '{OTHER}') AS operation,
           {slot_sql(bucket_sql("s.duration_ns"))} AS slot,
           argMin((s.trace_id, s.duration_ns, s.start_ns),
                  (s.status != '{ERROR}', -s.duration_ns, s.trace_id)) AS example
    FROM {db}.{incoming} AS s
    LEFT JOIN {kept_names(f"{db}.{NAMES}")} AS r
      ON r.service = s.service_name AND r.operation = s.name
    WHERE {entry("s")} AND NOT {synthetic_in_json("s.attributes")}
    GROUP BY minute, service, operation, slot
)"""


def statements(db: str, incoming: str, ttl: str) -> list[str]:
    """The rollups' DDL in ``db`` (quoted); ``incoming`` is the span intake table,
    ``ttl`` the spans' TTL clause on ``start_ns`` (or empty), applied to the minute."""
    minute_ttl = ttl.replace("fromUnixTimestamp64Nano(start_ns)", "toDateTime(minute * 60)")
    settings = f"SETTINGS ttl_only_drop_parts = 1, {_DURABLE}"
    kinds = ", ".join(f"'{kind.value}'" for kind in EdgeKind)
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.{OPERATIONS} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    operation LowCardinality(String) CODEC(ZSTD(1)),
    status LowCardinality(String) CODEC(ZSTD(1)),
    synthetic UInt8 CODEC(ZSTD(1)),
    bucket Int16 CODEC(ZSTD(1)),
    spans Int64 CODEC(ZSTD(1)),
    duration_sum Int64 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree((spans, duration_sum))
PARTITION BY {_DAY}
ORDER BY (minute, service, operation, status, synthetic, bucket)
{minute_ttl}{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{EDGES} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    caller LowCardinality(String) CODEC(ZSTD(1)),
    caller_operation LowCardinality(String) CODEC(ZSTD(1)),
    callee LowCardinality(String) CODEC(ZSTD(1)),
    callee_operation LowCardinality(String) CODEC(ZSTD(1)),
    kind LowCardinality(String) CODEC(ZSTD(1)),
    measure LowCardinality(String) CODEC(ZSTD(1)),
    synthetic UInt8 CODEC(ZSTD(1)),
    bucket Int16 CODEC(ZSTD(1)),
    calls Int64 CODEC(ZSTD(1)),
    errors Int64 CODEC(ZSTD(1)),
    CONSTRAINT known_kind CHECK kind IN ({kinds})
)
ENGINE = SummingMergeTree((calls, errors))
PARTITION BY {_DAY}
ORDER BY (minute, caller, callee, kind, caller_operation, callee_operation, measure,
          synthetic, bucket)
{minute_ttl}{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{NAMES} (
    service String,
    operation String
)
ENGINE = ReplacingMergeTree
ORDER BY (service, operation)
SETTINGS {_DURABLE}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{EXEMPLARS} (
    minute Int64 CODEC(Delta(8), ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    operation LowCardinality(String) CODEC(ZSTD(1)),
    slot UInt8 CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    duration_ns Int64 CODEC(ZSTD(1)),
    start_ns Int64 CODEC(ZSTD(1)),
    first UInt64 CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(first)
PARTITION BY {_DAY}
ORDER BY (minute, service, operation, slot)
{minute_ttl}{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{STAGED} (
    writer String,
    trace_id String,
    span_id String,
    start_ns Int64,
    service_name String,
    name String,
    staged_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY writer
ORDER BY (trace_id, span_id, start_ns)
TTL staged_at + toIntervalSecond({STAGED_TTL_S})
SETTINGS ttl_only_drop_parts = 1""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{OPERATIONS_MV} TO {db}.{OPERATIONS} AS
{operation_delta(db, f"{db}.{incoming}", synthetic_in_json("s.attributes"), 1)}""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{EXEMPLARS_MV} TO {db}.{EXEMPLARS} AS
{_exemplar_select(db, incoming)}""",
    ]
