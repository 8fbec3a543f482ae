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
  own spans and lookup rows from what its intake received.

The store's SQL is the same on both: it names ``T``, which is the table itself on
one node and the ``Distributed`` table on a cluster. chDB refuses ``ON CLUSTER``,
``Replicated*`` and ``Distributed`` (no cluster, no Keeper), so this text is checked
against the single-node DDL by the tests, not run here.
"""

from __future__ import annotations

import re
from typing import Final

from threadline.server.storage.clickhouse import ddl, rollup_tables, schema

LOCAL_SUFFIX: Final = "_local"
REPLICATED: Final = (
    "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
)
REPLICATED_REPLACING: Final = (
    "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}',"
    " '{replica}', version)"
)
SHARDING_KEYS: Final[dict[str, str]] = {
    schema.SPANS: "cityHash64(trace_id)",
    schema.SPANS_INCOMING: "cityHash64(trace_id)",
    schema.TRACE_ID_TS: "cityHash64(trace_id)",
    schema.LOGS: "rand()",
    # Every version of an alert's row on one shard, so FINAL finds the newest.
    schema.ALERT_STATES: "cityHash64(slo, alert)",
    # Every version of a probe's history on one shard, for the same reason.
    schema.DRILL_RESULTS: "cityHash64(probe)",
    schema.VERSION_TABLE: "rand()",
    **rollup_tables.SHARDING_KEYS,
}
_TABLES: Final = tuple(SHARDING_KEYS)

_SUMMING: Final = re.compile(r"ENGINE = (Summing|Aggregating)MergeTree(?:\((\w*)\))?\n")
_CREATE_TABLE: Final = re.compile(r"^CREATE TABLE IF NOT EXISTS (\S+)\.(\w+) \(")
_CREATE_DATABASE: Final = re.compile(r"^CREATE DATABASE IF NOT EXISTS (\S+)$")
_CREATE_VIEW: Final = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\S+)\.(\w+) TO ")


def statements(database: str, cluster: str, *, ttl_days: int | None = None) -> list[str]:
    """The cluster DDL for ``database`` on ``cluster``, in the order to run it."""
    on = f" ON CLUSTER {schema.quote(cluster)}"
    out: list[str] = []
    for statement in ddl.statements(database, ttl_days=ttl_days):
        if _CREATE_DATABASE.match(statement):
            out.append(statement + on)
        elif match := _CREATE_TABLE.match(statement):
            db, table = match.group(1), match.group(2)
            local = _localised(statement, db).replace(
                f"{db}.{table}{LOCAL_SUFFIX} (", f"{db}.{table}{LOCAL_SUFFIX}{on} (", 1
            )
            out.append(_replicated(local))
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


def _replicated(statement: str) -> str:
    """``statement`` with its ``MergeTree`` engine (plain or replacing) replicated."""
    if "ENGINE = ReplacingMergeTree(version)\n" in statement:
        return statement.replace(
            "ENGINE = ReplacingMergeTree(version)\n", f"ENGINE = {REPLICATED_REPLACING}\n", 1
        )
    if match := _SUMMING.search(statement):
        # The rollups' engines: the same replication path, their own arguments after it.
        kind, arguments = match.group(1), match.group(2)
        path = REPLICATED.removeprefix("ReplicatedMergeTree(").removesuffix(")")
        extra = f", {arguments}" if arguments else ""
        return _SUMMING.sub(f"ENGINE = Replicated{kind}MergeTree({path}{extra})\n", statement, 1)
    return statement.replace("ENGINE = MergeTree\n", f"ENGINE = {REPLICATED}\n", 1)


def _localised(statement: str, db: str) -> str:
    """``statement`` with every ``db.T`` of a data table naming ``db.T_local``."""
    names = "|".join(re.escape(table) for table in _TABLES)
    return re.sub(rf"{re.escape(db)}\.({names})\b", rf"{db}.\1{LOCAL_SUFFIX}", statement)


def script(database: str, cluster: str, *, ttl_days: int | None = None) -> str:
    """The statements as one script, each ended by ``;``, for ``clickhouse-client -n``."""
    return "\n\n".join(f"{s};" for s in statements(database, cluster, ttl_days=ttl_days)) + "\n"
