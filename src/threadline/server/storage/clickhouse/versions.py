"""Schema versions of a ClickHouse store: create the schema, record its version, refuse newer.

Version 1 is the first ClickHouse schema; a later release adds its steps here, each
an idempotent list of statements run in order, as the DuckDB store's migrations do.
Version 2 adds the rollups and journey steps: their tables come with the schema's
statements (``IF NOT EXISTS``), and a version 1 database's stored spans are counted
into them before version 2 is recorded — ``rollups.rebuild`` (from emptied tables,
so an interrupted fill runs again whole on the next open) and
``journey_steps.backfill_on`` (every column folds by min, max or union, so a second
fill counts nothing twice). The tables of ``rollup_tables`` are filled by
``pair_rollups.backfill`` whenever a database holds spans but not those tables (a
version 1 database among them), progress in the log.

Version 3 stages each batch under its writer's id in ``staged_spans`` (created with
the schema's statements), read by every count after an insert (``staging``). The
step drops what staged batches before: ``pending_pairs_mv`` (a view copying every
insert into ``pending_pairs``, which one writer counted and emptied for all) and the
tables ``pending_pairs`` and ``rollup_pending``; on a cluster ``ON CLUSTER``, the
``Distributed`` tables and their ``_local`` tables both. Nothing in them needs
keeping: a version 2 writer emptied both after each batch.

Version 4 keeps a span's resource values as ``LowCardinality`` (``schema.RESOURCE_MAP``)
and gives every column of the span table and of the tables whose rows follow spans,
traces or minutes (``CODEC_TABLES``) the codec its ``CREATE TABLE`` names: those of
``schema.SPAN_CODECS``, and ZSTD where the rollups and the trace rollup had none.
The step changes the resource column's type (on a cluster, of the local tables and of
the ``Distributed`` one): a mutation rewriting that column of every part, waited for,
so a large store takes a while to open once. The codecs change the table's metadata
only; parts take them as they merge. Setting a type or codec a column already has is
a no-op, so an interrupted step runs again safely. The view that feeds the span table
is left as it is: what it casts to the old type, ClickHouse converts on insert.
"""

from __future__ import annotations

import logging
import re
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from threadline.server.storage.base import StoreError
from threadline.server.storage.clickhouse import (
    cluster,
    ddl,
    journey_steps,
    pair_rollups,
    rollup_schema,
    rollup_tables,
    rollups,
    schema,
)
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.schema import quote
from threadline.server.storage.clickhouse.tables import Tables

logger = logging.getLogger(__name__)

# The tables version 4 gives the codecs their ``CREATE TABLE`` statements name: the span
# table and every table whose rows follow spans, traces or minutes.
CODEC_TABLES: Final = (
    schema.SPANS,
    rollup_tables.TRACE_ROLLUP,
    rollup_tables.REQUEST_ROLLUP,
    rollup_tables.PAIR_ROLLUP,
    rollup_tables.HOP_ROLLUP,
    rollup_tables.ORPHAN_SPANS,
    rollup_schema.OPERATIONS,
    rollup_schema.EDGES,
    rollup_schema.EXEMPLARS,
)
# A column line of a ``CREATE TABLE`` statement that names its codec.
_COLUMN_CODEC: Final = re.compile(r"^    (\w+) .* CODEC\((.*)\),?$", re.MULTILINE)

# What version 3 drops, views first (a view writes into one of the tables).
RETIRED_VIEWS: Final = ("pending_pairs_mv",)
RETIRED_TABLES: Final = ("pending_pairs", "rollup_pending")


def open_schema(connection: Connection, t: Tables, *, ttl_days: int | None = None) -> int:
    """Create the schema where it is missing and return the database's version.

    A database written by a newer release (a version above ``SCHEMA_VERSION``) is
    refused: this release would not keep its tables as that release expects.
    """
    if t.cluster:
        _check_cluster_tables(connection, t)
    else:
        # Spans stored before the rollup tables existed are counted into them once made.
        unrolled = _lacks_rollups(connection, t)
        for statement in ddl.statements(connection.database, ttl_days=ttl_days):
            connection.command(statement, doing="creating the ClickHouse schema")
        if unrolled:
            pair_rollups.backfill(connection, t)
    rows = connection.rows(
        f"SELECT max(version) FROM {t.versions}", doing="reading the schema version"
    )
    current = int(rows[0][0] or 0) if rows else 0
    if current > schema.SCHEMA_VERSION:
        raise StoreError(
            f"the ClickHouse database {connection.database!r} has schema version {current},"
            f" newer than this release's {schema.SCHEMA_VERSION}; upgrade threadline"
        )
    if 0 < current < 2:
        rollups.rebuild(connection, t)
        # Every step column folds by min, max or union: an interrupted fill run again
        # whole on the next open counts nothing twice.
        journey_steps.backfill_on(connection, t)
    if 0 < current < 3:
        for statement in retired(t):
            connection.command(statement, doing="dropping the tables of schema version 2")
    if 0 < current < 4:
        logger.info("schema version 4: rewriting the resource column of every span part")
        for statement in version_4(t):
            connection.command(statement, doing="upgrading to schema version 4")
    if current < schema.SCHEMA_VERSION:
        connection.command(
            f"INSERT INTO {t.versions} (version, applied_ns, applied_by)"
            " VALUES ({v:UInt32}, {at:Int64}, {by:String})",
            {"v": schema.SCHEMA_VERSION, "at": time.time_ns(), "by": _release()},
            doing="recording the schema version",
        )
    return schema.SCHEMA_VERSION


def retired(t: Tables) -> list[str]:
    """The statements of the version 3 step (idempotent: ``IF EXISTS``)."""
    db = quote(t.database)
    on = f" ON CLUSTER {quote(t.cluster)}" if t.cluster else ""
    drops = [f"DROP VIEW IF EXISTS {db}.{view}{on}" for view in RETIRED_VIEWS]
    for table in RETIRED_TABLES:
        drops.append(f"DROP TABLE IF EXISTS {db}.{table}{on}")
        if t.cluster:
            drops.append(f"DROP TABLE IF EXISTS {t.parts_of(table)}")
    return drops


def version_4(t: Tables) -> list[str]:
    """The statements of the version 4 step (idempotent: the same type or codec again is
    a no-op)."""
    change = (
        f" MODIFY COLUMN resource {schema.RESOURCE_MAP} CODEC(ZSTD(1)) SETTINGS mutations_sync = 2"
    )
    # ``parts_of``: the table itself, or on a cluster the local tables ON CLUSTER.
    tables = [t.parts_of(schema.SPANS)]
    if t.cluster:  # the Distributed table's column, which reads and inserts go through
        tables.append(f"{quote(t.database)}.{schema.SPANS} ON CLUSTER {quote(t.cluster)}")
    statements = [f"ALTER TABLE {table}{change}" for table in tables]
    declared = declared_codecs(t.database)
    # Where the parts are: a codec is the local tables' business, not the Distributed's.
    for table in CODEC_TABLES:
        clauses = ", ".join(
            f"MODIFY COLUMN {column} CODEC({codec})" for column, codec in declared[table]
        )
        statements.append(f"ALTER TABLE {t.parts_of(table)} {clauses}")
    return statements


def declared_codecs(database: str) -> dict[str, list[tuple[str, str]]]:
    """Per table of the schema, each column with the codec its ``CREATE TABLE`` names."""
    declared: dict[str, list[tuple[str, str]]] = {}
    for statement in ddl.statements(database):
        if (created := ddl.CREATE_TABLE.match(statement)) is not None:
            declared[created.group(2)] = _COLUMN_CODEC.findall(statement)
    return declared


def _lacks_rollups(connection: Connection, t: Tables) -> bool:
    """The database holds spans but not the rollup tables (written before they existed)."""
    rows = connection.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}",
        {"db": t.database},
        doing="reading the store's tables",
    )
    names = {str(row[0]) for row in rows}
    return schema.SPANS in names and not set(rollup_tables.DATA_TABLES) <= names


def _check_cluster_tables(connection: Connection, t: Tables) -> None:
    """On a cluster the operator creates the tables (``threadline store ddl --cluster``):
    refuse to start without them rather than create single-node tables on one node."""
    rows = connection.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}",
        {"db": t.database},
        doing="reading the cluster's tables",
    )
    missing = sorted(set(cluster.SHARDING_KEYS) - {str(row[0]) for row in rows})
    if missing:
        raise StoreError(
            f"the ClickHouse database {t.database!r} lacks {', '.join(missing)}: create the "
            f"tables first with `threadline store ddl --cluster {t.cluster} --database "
            f"{t.database}` (see docs/scale.md)"
        )


def _release() -> str:
    try:
        return f"threadline {version('threadline')}"
    except PackageNotFoundError:
        return "threadline"
