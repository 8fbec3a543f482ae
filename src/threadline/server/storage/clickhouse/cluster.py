"""The replicated, sharded form of the schema, for a ClickHouse cluster.

Derived from the single-node statements of ``schema.py`` by substitution, so the two
cannot drift apart (Jaeger's ClickHouse guide and the OTel Collector exporter's
cluster mode use the same shape):

- every statement runs ``ON CLUSTER <name>``;
- each table ``T`` becomes ``T_local`` on every node, ``MergeTree`` becoming
  ``ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')``
  (the ``Null`` intake table stays ``Null``);
- a ``Distributed`` table named ``T`` over the ``T_local`` tables takes the reads and
  inserts the store sends to ``T``; spans, their intake and the trace lookup are
  sharded by ``cityHash64(trace_id)``, so a trace lives on one shard and its lookup
  row beside it; alert states and drill results by their key, logs and the schema
  versions by ``rand()``;
- the materialized views read and write the local tables, so each shard feeds its
  own spans and lookup rows from what its intake received;
- the rollups (``rollup_schema``) are summing and replacing tables made replicated the
  same way; each shard's views count what its intake received and reads sum over the
  shards. The kept operation names are one replica set on every node (no ``{shard}``
  in their path), so every shard's view maps names as the others do; the staged keys
  of an insert are sharded by trace id beside their spans, so the pair count joins
  them shard by shard (``distributed_product_mode = 'local'``).

The store's SQL is the same on both: it names ``T``, which is the table itself on
one node and the ``Distributed`` table on a cluster. chDB refuses ``ON CLUSTER``,
``Replicated*`` and ``Distributed`` (no cluster, no Keeper), so this text is checked
against the single-node DDL by the tests, not run here.
"""

from __future__ import annotations

import re
from typing import Final

from threadline.server.storage.clickhouse import (
    ddl,
    document_table,
    rollup_schema,
    rollup_tables,
    schema,
)

LOCAL_SUFFIX: Final = "_local"
REPLICATED: Final = (
    "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
)
REPLICATED_AGGREGATING: Final = (
    "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
)
REPLICATED_REPLACING: Final = (
    "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}',"
    " '{replica}', version)"
)
# Replicated on every node, not sharded: the path names no shard.
EVERY_NODE: Final = "/clickhouse/tables/all/{database}/{table}"
_PATH: Final = "/clickhouse/tables/{shard}/{database}/{table}"
_ENGINE: Final = re.compile(r"ENGINE = (\w*)MergeTree(?:\((.*)\))?\n")
SHARDING_KEYS: Final[dict[str, str]] = {
    schema.SPANS: "cityHash64(trace_id)",
    schema.SPANS_INCOMING: "cityHash64(trace_id)",
    schema.TRACE_ID_TS: "cityHash64(trace_id)",
    schema.LOGS: "rand()",
    # Every version of an alert's row on one shard, so FINAL finds the newest.
    schema.ALERT_STATES: "cityHash64(slo, alert)",
    # Every version of a probe's history on one shard, for the same reason.
    schema.DRILL_RESULTS: "cityHash64(probe)",
    document_table.DOCUMENTS: document_table.SHARDING_KEY,
    schema.VERSION_TABLE: "rand()",
    rollup_schema.OPERATIONS: "cityHash64(service)",
    rollup_schema.EDGES: "cityHash64(callee)",
    rollup_schema.NAMES: "rand()",
    rollup_schema.EXEMPLARS: "cityHash64(trace_id)",
    rollup_schema.STAGED: "cityHash64(trace_id)",
    # Beside the spans it is fed from: each shard's view sees whole traces.
    schema.JOURNEY_STEPS: "cityHash64(trace_id)",
    **rollup_tables.SHARDING_KEYS,
}
_TABLES: Final = tuple(SHARDING_KEYS)

_CREATE_DATABASE: Final = re.compile(r"^CREATE DATABASE IF NOT EXISTS (\S+)$")
_CREATE_VIEW: Final = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\S+)\.(\w+) TO ")


def statements(database: str, cluster: str, *, ttl_days: int | None = None) -> list[str]:
    """The cluster DDL for ``database`` on ``cluster``, in the order to run it."""
    on = f" ON CLUSTER {schema.quote(cluster)}"
    out: list[str] = []
    for statement in ddl.statements(database, ttl_days=ttl_days):
        if _CREATE_DATABASE.match(statement):
            out.append(statement + on)
        elif match := ddl.CREATE_TABLE.match(statement):
            db, table = match.group(1), match.group(2)
            local = _localised(statement, db).replace(
                f"{db}.{table}{LOCAL_SUFFIX} (", f"{db}.{table}{LOCAL_SUFFIX}{on} (", 1
            )
            out.append(_replicated(local, table))
            out.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{table}{on} AS {db}.{table}{LOCAL_SUFFIX}\n"
                f"ENGINE = Distributed({schema.quote(cluster)}, {db}, {table}{LOCAL_SUFFIX},"
                f" {SHARDING_KEYS[table]})"
            )
        elif match := _CREATE_VIEW.match(statement):
            db, view = match.group(1), match.group(2)
            localised = _localised(statement, db)
            out.append(localised.replace(f"{db}.{view} TO ", f"{db}.{view}{on} TO ", 1))
        else:
            raise ValueError(f"no cluster form for the statement: {statement[:60]}…")
    return out


def _replicated(statement: str, table: str) -> str:
    """``statement`` with its ``*MergeTree`` engine replicated, its arguments kept."""
    path = EVERY_NODE if table == rollup_schema.NAMES else _PATH

    def engine(match: re.Match[str]) -> str:
        arguments = f", {match.group(2)}" if match.group(2) else ""
        return f"ENGINE = Replicated{match.group(1)}MergeTree('{path}', '{{replica}}'{arguments})\n"

    return _ENGINE.sub(engine, statement, count=1)


def _localised(statement: str, db: str) -> str:
    """``statement`` with every ``db.T`` of a data table naming ``db.T_local``."""
    names = "|".join(re.escape(table) for table in _TABLES)
    return re.sub(rf"{re.escape(db)}\.({names})\b", rf"{db}.\1{LOCAL_SUFFIX}", statement)


def script(database: str, cluster: str, *, ttl_days: int | None = None) -> str:
    """The statements as one script, each ended by ``;``, for ``clickhouse-client -n``."""
    return "\n\n".join(f"{s};" for s in statements(database, cluster, ttl_days=ttl_days)) + "\n"
