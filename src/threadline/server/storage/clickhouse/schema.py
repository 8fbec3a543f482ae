"""The ClickHouse schema, single node, in the shape the OpenTelemetry Collector's
ClickHouse exporter proved (and SigNoz and Jaeger's ClickHouse plugin follow).

- ``spans``: a ``MergeTree`` partitioned by day (retention drops whole parts, see
  ``ttl_only_drop_parts``) and ordered by service, operation and time, the order
  fleet queries filter in (the sort ends in the start time itself, so the ``Delta``
  of neighbouring starts is small). Service, operation, kind, status and scope are
  ``LowCardinality``; times are ``Delta``+``ZSTD`` coded (neighbouring spans start
  close together); the end is kept as ``length_ns = end - start`` (which compresses
  as a duration does, where the end itself costs a byte more per span) and read as
  the alias ``end_ns``, and the duration is the alias ``greatest(length_ns, 0)``, as
  ingest computes it; the attribute maps are ``Map(LowCardinality(String), String)``
  with bloom-filter skip indexes on keys and values, and ``trace_id`` has one too.
  Attribute values are kept as their JSON text (``"GET"``, ``200``, ``[1,2]``), so a
  span reads back exactly as it was written.
- ``spans_incoming``: a ``Null`` table in the columns of ``SPAN_SCHEMA``. The writer
  inserts the Arrow batch there as it is; ``spans_incoming_mv`` turns the JSON text
  of the attribute maps into ``Map`` values on the way into ``spans``. Nothing is
  stored in it.
- ``trace_id_ts``: ``trace_id → (start, end)``, fed by ``trace_id_ts_mv`` per insert
  block, ordered by trace id. A trace by id first reads its time range here (one
  granule), then only the partitions and granules of ``spans`` in that range: the
  span table is not ordered by trace id, and a lookup without the range reads
  every partition (DESIGN.md: ~34 ms against ~9 ms).
- ``logs``: log records, partitioned by day, ordered by service and time.
- ``alert_states``: the alerts' state, a ``ReplacingMergeTree`` keyed by SLO and
  alert: saving inserts one block holding a new version of each row saved and a
  ``forgotten`` row for each deleted, so a save is all or nothing (one insert), and
  reads take the newest version of each key (``FINAL``), leaving the forgotten out.
- ``drill_results``: the scheduled drills' results, a ``ReplacingMergeTree`` keyed by
  probe whose row holds the probe's kept history as arrays, newest first: a save
  inserts the new history whole, run and trim together (``drill_results.py``).
- ``documents`` (version 2): the documents people edit, a ``ReplacingMergeTree``
  keyed by name (``document_table.py``).
- ``journey_steps`` (version 2): one row per trace of a session, kept by
  ``journey_steps_mv`` from ``spans``; ``journey_schema.py`` says why its shape.
- ``threadline_schema``: one row per schema version applied.
- the rollups (version 2): per-minute counts the fleet views read, see ``rollup_schema``.

Every statement is idempotent (``IF NOT EXISTS``). ``{db}`` is the database name,
quoted by ``quote``. ``cluster.py`` derives the replicated, sharded form of the same
statements; the two cannot drift apart.
"""

from __future__ import annotations

from typing import Final

from threadline.server.storage.clickhouse import document_table, journey_schema, rollup_schema

# Version 2 adds the rollups (``rollup_schema``; ``versions`` fills them on a version 1
# database) and the journey steps (``journey_schema``). Version 3 stages each batch
# per writer in ``staged_spans`` (``staging``) and drops the tables it replaces.
# Version 4 keeps the values of a span's resource as ``LowCardinality`` (``RESOURCE_MAP``)
# and sets codecs: ``SPAN_CODECS``, and ZSTD on every rollup column (``versions``).
SCHEMA_VERSION: Final = 4


SPANS: Final = "spans"
SPANS_INCOMING: Final = "spans_incoming"
SPANS_MV: Final = "spans_incoming_mv"
TRACE_ID_TS: Final = "trace_id_ts"
TRACE_ID_TS_MV: Final = "trace_id_ts_mv"
LOGS: Final = "logs"
ALERT_STATES: Final = "alert_states"
DRILL_RESULTS: Final = "drill_results"
VERSION_TABLE: Final = "threadline_schema"
JOURNEY_STEPS: Final = journey_schema.TABLE
JOURNEY_STEPS_MV: Final = journey_schema.VIEW

# Data tables (not views, not the Null table): what holds bytes on disk.
DATA_TABLES: Final = (SPANS, TRACE_ID_TS, LOGS, JOURNEY_STEPS)

# A span's start as a time, for partitions, ordering and TTL.
START_TIME: Final = "fromUnixTimestamp64Nano(start_ns)"

# Parts are fsynced before an insert returns, as DuckDB's COMMIT syncs its WAL: the
# 200 sent after the insert then means the spans survive a power cut, not only a
# killed process.
_DURABLE: Final = "fsync_after_insert = 1, fsync_part_directory = 1"

_MAP: Final = "Map(LowCardinality(String), String)"
# A resource describes the process a span came from, so its values repeat on every
# span of the process, and a part holds a few hundred distinct ones at most: kept as
# dictionary indexes, the column takes 1.9 B/span less (``bench/chdb_codecs.py``).
RESOURCE_MAP: Final = "Map(LowCardinality(String), LowCardinality(String))"


# Codecs of span columns set by schema version 4, each measured by
# ``bench/chdb_codecs.py``: T64 drops the unused high bits of durations before ZSTD (as
# SigNoz stores them); session and user ids, which repeat within a block, take ZSTD's
# level 3.
SPAN_CODECS: Final = {
    "length_ns": "T64, ZSTD(1)",
    "session_id": "ZSTD(3)",
    "user_id": "ZSTD(3)",
}


def _to_map(column: str, map_type: str = _MAP) -> str:
    """JSON object text to a map of each key to its value's JSON text."""
    return f"CAST(JSONExtractKeysAndValuesRaw({column}), '{map_type}')"


def quote(name: str) -> str:
    """``name`` as a ClickHouse identifier (backquoted, backquotes and backslashes escaped)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def statements(database: str, *, ttl_days: int | None = None) -> list[str]:
    """The DDL of a new (or the current) single-node schema in ``database``, in order.

    ``ttl_days`` adds a TTL to spans and logs: ClickHouse drops whole day partitions
    past it (``ttl_only_drop_parts``), no rewrite of live parts.
    """
    db = quote(database)
    span_ttl = _ttl("start_ns", ttl_days)
    log_ttl = _ttl("time_ns", ttl_days)
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"""CREATE TABLE IF NOT EXISTS {db}.{SPANS} (
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id Nullable(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind LowCardinality(String) CODEC(ZSTD(1)),
    start_ns Int64 CODEC(Delta(8), ZSTD(1)),
    length_ns Int64 CODEC({SPAN_CODECS["length_ns"]}),
    end_ns Int64 ALIAS start_ns + length_ns,
    duration_ns Int64 ALIAS greatest(length_ns, 0),
    status LowCardinality(String) CODEC(ZSTD(1)),
    status_message String CODEC(ZSTD(1)),
    session_id Nullable(String) CODEC({SPAN_CODECS["session_id"]}),
    user_id Nullable(String) CODEC({SPAN_CODECS["user_id"]}),
    journey_id Nullable(String) CODEC(ZSTD(1)),
    attributes {_MAP} CODEC(ZSTD(1)),
    resource {RESOURCE_MAP} CODEC(ZSTD(1)),
    events String CODEC(ZSTD(1)),
    links String CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_key mapKeys(resource) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_value mapValues(resource) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration length_ns TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate({START_TIME})
PRIMARY KEY (service_name, name, toDateTime({START_TIME}))
ORDER BY (service_name, name, toDateTime({START_TIME}), start_ns)
{span_ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {_DURABLE}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{SPANS_INCOMING} (
    trace_id String,
    span_id String,
    parent_span_id Nullable(String),
    service_name String,
    name String,
    kind String,
    start_ns Int64,
    end_ns Int64,
    duration_ns Int64,
    status String,
    status_message String,
    session_id Nullable(String),
    user_id Nullable(String),
    journey_id Nullable(String),
    attributes String,
    resource String,
    events String,
    links String,
    scope_name String
)
ENGINE = Null""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{SPANS_MV} TO {db}.{SPANS} AS
SELECT trace_id, span_id, parent_span_id, service_name, name, kind, start_ns,
       end_ns - start_ns AS length_ns, status, status_message, session_id, user_id, journey_id,
       {_to_map("attributes")} AS attributes,
       {_to_map("resource", RESOURCE_MAP)} AS resource,
       events, links, scope_name
FROM {db}.{SPANS_INCOMING}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{TRACE_ID_TS} (
    trace_id String CODEC(ZSTD(1)),
    start_ns Int64 CODEC(Delta(8), ZSTD(1)),
    end_ns Int64 CODEC(Delta(8), ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate({START_TIME})
ORDER BY (trace_id, start_ns)
{span_ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {_DURABLE}""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{TRACE_ID_TS_MV} TO {db}.{TRACE_ID_TS} AS
SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns
FROM {db}.{SPANS}
WHERE trace_id != ''
GROUP BY trace_id""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{LOGS} (
    time_ns Int64 CODEC(Delta(8), ZSTD(1)),
    observed_ns Int64 CODEC(Delta(8), ZSTD(1)),
    trace_id Nullable(String) CODEC(ZSTD(1)),
    span_id Nullable(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    severity_number Int64 CODEC(ZSTD(1)),
    severity_text LowCardinality(String) CODEC(ZSTD(1)),
    body String CODEC(ZSTD(1)),
    body_kind LowCardinality(String) CODEC(ZSTD(1)),
    session_id Nullable(String) CODEC(ZSTD(1)),
    user_id Nullable(String) CODEC(ZSTD(1)),
    journey_id Nullable(String) CODEC(ZSTD(1)),
    attributes String CODEC(ZSTD(1)),
    resource String CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_body lower(body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(fromUnixTimestamp64Nano(time_ns))
ORDER BY (service_name, toDateTime(fromUnixTimestamp64Nano(time_ns)))
{log_ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {_DURABLE}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{ALERT_STATES} (
    slo String,
    alert String,
    state LowCardinality(String),
    active_since_ns Int64,
    updated_ns Int64,
    firing_since_ns Nullable(Int64),
    resolved_ns Nullable(Int64),
    summary String,
    labels String,
    forgotten UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (slo, alert)
SETTINGS {_DURABLE}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{DRILL_RESULTS} (
    probe String,
    started_ns Array(Int64),
    duration_ns Array(Int64),
    passed Array(UInt8),
    journey_id Array(String),
    trace_ids Array(Array(String)),
    services Array(Array(String)),
    problems Array(String),
    verdict Array(String),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY probe
SETTINGS {_DURABLE}""",
        document_table.create_statement(db, _DURABLE),
        f"""CREATE TABLE IF NOT EXISTS {db}.{VERSION_TABLE} (
    version UInt32,
    applied_ns Int64,
    applied_by String
)
ENGINE = MergeTree
ORDER BY version""",
        *rollup_schema.statements(db, SPANS_INCOMING, span_ttl),
        *journey_schema.statements(db, spans=SPANS, ttl=span_ttl, settings=_DURABLE),
    ]


def _ttl(column: str, days: int | None) -> str:
    if days is None:
        return ""
    if days < 1:
        raise ValueError(f"ttl_days must be at least 1, got {days}")
    return f"TTL toDateTime(fromUnixTimestamp64Nano({column})) + toIntervalDay({days})\n"
