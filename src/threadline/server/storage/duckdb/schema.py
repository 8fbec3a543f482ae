"""The newest DuckDB schema: one ``spans`` table mirroring ``SPAN_SCHEMA``, its indexes,
and the ``threadline_schema`` table that records the file's schema version.

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
# One example trace per minute × service × operation × latency slot (schema version 8).
ROLLUP_EXEMPLARS: Final = "rollup_exemplars"

# ART indexes on the keys a trace page and a journey page look up by: they take a
# lookup from ~4 ms (15 ms at 10M spans) to ~1.6 ms for ~10% of ingest throughput.
# Journeys by user id read the same way, so user_id gets one too.
INDEXED_COLUMNS: Final[tuple[str, ...]] = ("trace_id", "session_id", "user_id")


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
    create_indexes = [
        f"CREATE INDEX IF NOT EXISTS {TABLE}_{column} ON {TABLE} ({column})"
        for column in INDEXED_COLUMNS
    ]
    return [
        create_table,
        *create_indexes,
        *rollup_statements(),
        EXEMPLARS_DDL,
        VERSION_TABLE_DDL,
    ]


# ``/metrics`` exemplars (``rollups.EXEMPLARS``): the trace id of one entry span per
# minute × service × operation × slot between histogram bounds, its duration and start.
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
