"""The newest DuckDB schema: one ``spans`` table mirroring ``SPAN_SCHEMA``, its indexes,
the ``logs`` table (``logs``, schema version 9), and the ``threadline_schema`` table
that records the file's schema version.

The span table is derived from ``SPAN_SCHEMA`` so the two cannot drift apart: same
column names in the same order, ``BIGINT`` for the ``*_ns`` times, ``VARCHAR`` for the
rest. These statements make a new file; an older file is brought here by the steps
in ``migrations``. Every statement is idempotent, so running them on a file that
already has the newest schema changes nothing.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from threadline.server.batch import SPAN_SCHEMA
from threadline.server.storage.duckdb import logs

TABLE: Final = "spans"
# One row per schema version the file has been at (see ``migrations``).
VERSION_TABLE: Final = "threadline_schema"
VERSION_TABLE_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (\n"
    "    version INTEGER PRIMARY KEY,\n"
    "    applied_ns BIGINT,\n"
    "    applied_by VARCHAR NOT NULL\n"
    ")"
)

# Per-minute aggregates kept at ingest (``rollups``, schema version 3).
ROLLUP_OPERATIONS: Final = "rollup_operations"
ROLLUP_EDGES: Final = "rollup_edges"
ROLLUP_NAMES: Final = "rollup_names"
ROLLUP_SERVICES: Final = "rollup_services"
# One row per trace for search and journey lists (``summaries``, schema version 4).
TRACE_SUMMARIES: Final = "trace_summaries"
# Every span of each trace with an error span, kept apart for error hotspots
# (``kept_apart``, schema version 19).
FAILED_SPANS: Final = "failed_trace_spans"
# Every span of each trace whose root request is in its operation's tail, kept apart
# for tail causes (``kept_apart``, schema version 23).
SLOW_SPANS: Final = "slow_trace_spans"
# Each operation's own time on the critical path of the root request of a hash share of
# the copied traces, walked at the fold (``kept_paths``, schema version 25); ``start_ns``
# is the trace's first span's start, which retention and the fold's deletes bound.
REQUEST_PATHS: Final = "trace_request_paths"
REQUEST_PATHS_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {REQUEST_PATHS} (
    trace_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL, target_service VARCHAR NOT NULL,
    target_operation VARCHAR NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    own_ns BIGINT NOT NULL
)"""
# Per-minute counts behind error hotspots and propagation health (``health_rollups``,
# schema version 5).
ROLLUP_ROOTS: Final = "rollup_roots"
ROLLUP_ENTRIES: Final = "rollup_entries"
ROLLUP_ORPHANS: Final = "rollup_orphans"
ROLLUP_ORPHAN_SPANS: Final = "rollup_orphan_spans"
ROLLUP_HOPS: Final = "rollup_hops"
ROLLUP_MESSAGE_SPANS: Final = "rollup_message_spans"
# The SDK's reports about itself, per minute × service × process (``sdk_rollup``, v6).
ROLLUP_SDK_STATS: Final = "rollup_sdk_stats"
# What the SLO evaluator reads besides them, and the alerts' state (schema version 7).
ROLLUP_RETRIES: Final = "rollup_retries"
ROLLUP_SYNTHETIC: Final = "rollup_synthetic"
ROLLUP_SYNTHETIC_EDGES: Final = "rollup_synthetic_edges"
ALERT_STATES: Final = "alert_states"
# One example trace per minute × service × operation × latency slot (schema version 8).
ROLLUP_EXEMPLARS: Final = "rollup_exemplars"
# Journey steps, one row per trace of a session, and the synthetic traces left out
# (``journey_steps``, schema version 9).
JOURNEY_STEPS: Final = "journey_steps"
JOURNEY_SYNTHETIC: Final = "journey_synthetic"
# Each session's latest touching and failed minutes and, per step (or service) and
# minute, the sessions whose latest is there: what a journey SLO reads
# (``journey_sessions``, schema version 14).
JOURNEY_SESSION_TOUCHES: Final = "journey_session_touches"
JOURNEY_SESSION_FAILURES: Final = "journey_session_failures"
JOURNEY_SLO_MINUTES: Final = "journey_slo_minutes"
# One row per session over its folded traces: what journey lists read
# (``journey_summaries``, schema version 17).
JOURNEY_SUMMARIES: Final = "journey_summaries"
JOURNEY_SUMMARIES_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {JOURNEY_SUMMARIES} (
    session_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    last_start_ns BIGINT NOT NULL,
    earliest_last_start_ns BIGINT NOT NULL,
    latest_start_ns BIGINT NOT NULL,
    traces BIGINT NOT NULL,
    spans BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    user_id VARCHAR,
    services VARCHAR[] NOT NULL
)"""
# Scheduled drills' results, the newest few per probe (``drill_results``, schema v11).
DRILL_RESULTS: Final = "drill_results"
DRILL_RESULTS_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {DRILL_RESULTS} (
    probe VARCHAR NOT NULL,
    started_ns BIGINT NOT NULL,
    duration_ns BIGINT NOT NULL,
    passed BOOLEAN NOT NULL,
    journey_id VARCHAR NOT NULL,
    trace_ids VARCHAR[] NOT NULL,
    services VARCHAR[] NOT NULL,
    problems VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL
)"""
# The documents people edit (sampling rules, SLOs, funnels, probes), one row per name
# with its ETag (``documents``, schema version 12).
DOCUMENTS: Final = "documents"
DOCUMENTS_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {DOCUMENTS} (
    name VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    etag VARCHAR NOT NULL,
    saved_ns BIGINT NOT NULL
)"""

# The top-level keys some stored span's resource carries, one row each, or a NULL key
# for "any key" past ``resource_keys.MAX_KEYS`` (``resource_keys``, schema version 24).
RESOURCE_KEYS: Final = "resource_keys"
RESOURCE_KEYS_DDL: Final = f"CREATE TABLE IF NOT EXISTS {RESOURCE_KEYS} (key VARCHAR)"

# An ART index on the key a trace page looks up by: it takes a lookup from ~4 ms
# (15 ms at 10M spans) to ~1.6 ms. Sessions and users are found in the trace
# summaries (``summary_reads``), so the spans keep no index on those ids: theirs made
# every commit update two more indexes, a tenth of a commit's time with rollups
# (schema version 18 dropped them; docs/performance.md).
INDEXED_COLUMNS: Final[tuple[str, ...]] = ("trace_id",)


def _sql_type(field: pa.Field) -> str:
    if pa.types.is_int64(field.type):
        return "BIGINT"
    if pa.types.is_string(field.type):
        return "VARCHAR"
    raise TypeError(f"no DuckDB type declared for column {field.name!r} of type {field.type}")


def _column(field: pa.Field) -> str:
    not_null = "" if field.nullable else " NOT NULL"
    return f"{field.name} {_sql_type(field)}{not_null}"


def create_statements() -> list[str]:
    """DDL creating the newest schema's tables and indexes where they are missing."""
    columns = ",\n    ".join(_column(field) for field in SPAN_SCHEMA)
    create_table = f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    {columns}\n)"
    create_failed = f"CREATE TABLE IF NOT EXISTS {FAILED_SPANS} (\n    {columns}\n)"
    create_slow = f"CREATE TABLE IF NOT EXISTS {SLOW_SPANS} (\n    {columns}\n)"
    create_indexes = [
        f"CREATE INDEX IF NOT EXISTS {TABLE}_{column} ON {TABLE} ({column})"
        for column in INDEXED_COLUMNS
    ]
    return [
        create_table,
        *create_indexes,
        *rollup_statements(),
        *summary_statements(),
        create_failed,
        create_slow,
        *health_rollup_statements(),
        *sdk_rollup_statements(),
        *slo_statements(),
        EXEMPLARS_DDL,
        *journey_statements(),
        *journey_session_statements(),
        JOURNEY_SUMMARIES_DDL,
        *logs.statements(),
        DRILL_RESULTS_DDL,
        DOCUMENTS_DDL,
        RESOURCE_KEYS_DDL,
        REQUEST_PATHS_DDL,
        VERSION_TABLE_DDL,
    ]


def journey_statements() -> list[str]:
    """DDL for the journey steps (see ``journey_steps``); idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {JOURNEY_STEPS} (
    session_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    failed BOOLEAN NOT NULL,
    error_services VARCHAR[] NOT NULL,
    services VARCHAR[] NOT NULL,
    attributes VARCHAR[] DEFAULT [],
    error_origin VARCHAR,
    next_service VARCHAR,
    next_operation VARCHAR,
    next_start BIGINT,
    prev_step_start BIGINT,
    prev_move_start BIGINT
)""",
        f"""CREATE TABLE IF NOT EXISTS {JOURNEY_SYNTHETIC} (
    trace_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL
)""",
    ]


def journey_session_statements() -> list[str]:
    """DDL for the journey SLO state (see ``journey_sessions``) and the session index of
    the journey steps it is recomputed from; idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {JOURNEY_SESSION_TOUCHES} (
    session_id VARCHAR NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR,
    last_minute BIGINT NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS {JOURNEY_SESSION_FAILURES} (
    session_id VARCHAR NOT NULL,
    last_minute BIGINT NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS {JOURNEY_SLO_MINUTES} (
    service VARCHAR NOT NULL,
    operation VARCHAR,
    minute BIGINT NOT NULL,
    sessions BIGINT NOT NULL,
    bad BIGINT NOT NULL
)""",
        *(
            f"CREATE INDEX IF NOT EXISTS {table}_session_id ON {table} (session_id)"
            for table in (JOURNEY_STEPS, JOURNEY_SESSION_TOUCHES, JOURNEY_SESSION_FAILURES)
        ),
    ]


# ``/metrics`` exemplars (``exemplars``): the trace id of one entry span per minute ×
# service × operation × slot between histogram bounds, its duration and start.
EXEMPLARS_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {ROLLUP_EXEMPLARS} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    slot INTEGER NOT NULL,
    trace_id VARCHAR NOT NULL,
    duration_ns BIGINT NOT NULL,
    start_ns BIGINT NOT NULL
)"""


def rollup_statements() -> list[str]:
    """DDL for the rollup tables (see ``rollups``); idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_OPERATIONS} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    spans BIGINT NOT NULL,
    duration_sum BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_EDGES} (
    minute BIGINT NOT NULL,
    caller VARCHAR NOT NULL,
    caller_operation VARCHAR NOT NULL,
    callee VARCHAR NOT NULL,
    callee_operation VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_NAMES} (
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_SERVICES} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
    ]


def summary_statements() -> list[str]:
    """DDL for the trace summary table (see ``summaries``); idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {TRACE_SUMMARIES} (
    trace_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    last_start_ns BIGINT NOT NULL,
    root STRUCT(orphan BOOLEAN, start_ns BIGINT, span_id VARCHAR, service VARCHAR,
                operation VARCHAR) NOT NULL,
    spans BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    services VARCHAR[] NOT NULL,
    operations VARCHAR[] NOT NULL,
    sessions VARCHAR[] NOT NULL,
    users VARCHAR[] NOT NULL,
    origin_service VARCHAR,
    origin_operation VARCHAR,
    fresh BOOLEAN NOT NULL DEFAULT true,
    duration_ns BIGINT
)"""
    ]


def health_rollup_statements() -> list[str]:
    """DDL for the hotspot and propagation rollups (see ``health_rollups``); idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_ROOTS} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_ENTRIES} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    spans BIGINT NOT NULL,
    unparented BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_ORPHANS} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    orphans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_ORPHAN_SPANS} (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    service VARCHAR NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_HOPS} (
    minute BIGINT NOT NULL,
    producer VARCHAR NOT NULL,
    consumer VARCHAR NOT NULL,
    destination VARCHAR NOT NULL,
    messages BIGINT NOT NULL,
    broken BIGINT NOT NULL,
    linked BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_MESSAGE_SPANS} (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL,
    destination VARCHAR NOT NULL,
    links VARCHAR NOT NULL
)""",
    ]


def sdk_rollup_statements() -> list[str]:
    """DDL for the SDK telemetry rollup (see ``sdk_rollup``); idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_SDK_STATS} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    instance VARCHAR NOT NULL,
    reports BIGINT NOT NULL,
    reported_ns BIGINT NOT NULL,
    report VARCHAR NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)"""
    ]


def slo_statements() -> list[str]:
    """DDL for the SLO rollups (see ``slo_rollups``) and the alert state; idempotent."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_RETRIES} (
    minute BIGINT NOT NULL,
    caller VARCHAR NOT NULL,
    callee VARCHAR NOT NULL,
    retried BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_SYNTHETIC} (
    minute BIGINT NOT NULL,
    service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ROLLUP_SYNTHETIC_EDGES} (
    minute BIGINT NOT NULL,
    caller VARCHAR NOT NULL,
    callee VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true
)""",
        f"""CREATE TABLE IF NOT EXISTS {ALERT_STATES} (
    slo VARCHAR NOT NULL,
    alert VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    active_since_ns BIGINT NOT NULL,
    updated_ns BIGINT NOT NULL,
    firing_since_ns BIGINT,
    resolved_ns BIGINT,
    summary VARCHAR NOT NULL,
    labels VARCHAR NOT NULL
)""",
    ]
