"""The ClickHouse DDL: the single-node schema runs on chDB, and `threadline store ddl
--cluster` prints exactly that schema made replicated and sharded.

chDB has no cluster and no Keeper, so the cluster script cannot run here; what is
checked is that it is the tested single-node DDL with only the cluster substitutions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import clickhouse_connect
import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.exceptions import ClickHouseError

from threadline.cli.store_command import store
from threadline.server.storage.base import StoreError
from threadline.server.storage.clickhouse import cluster, ddl, schema, versions
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.clickhouse.tables import Tables
from threadline.store_url import StoreUrl

CLUSTER: Final = "prod"
REPLICATION_PATH: Final = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
DISTRIBUTED: Final = re.compile(
    r"^CREATE TABLE IF NOT EXISTS `threadline`\.(\w+) ON CLUSTER `prod` AS `threadline`\.(\w+)\n"
    r"ENGINE = Distributed\(`prod`, `threadline`, (\w+), (.+)\)$"
)

# A replicated engine, its ZooKeeper path (per shard, or one set on every node) and
# the plain engine's arguments.
REPLICATED: Final = re.compile(
    r"ENGINE = Replicated(\w*)MergeTree\('/clickhouse/tables/(\{shard\}|all)/\{database\}/"
    r"\{table\}', '\{replica\}'(?:, (.*))?\)\n"
)


def _unreplicated(match: re.Match[str]) -> str:
    arguments = f"({match.group(3)})" if match.group(3) else ""
    return f"ENGINE = {match.group(1)}MergeTree{arguments}\n"


def _printed(*args: str) -> list[str]:
    result = CliRunner().invoke(store, ["ddl", *args])
    assert result.exit_code == 0, result.output
    return [s.strip() for s in result.output.split(";\n") if s.strip()]


def test_cluster_ddl_is_the_single_node_ddl_with_the_cluster_substitutions() -> None:
    """Undoing ON CLUSTER, ReplicatedMergeTree, _local and the Distributed tables gives
    back the single-node statements, one for one; spans and their lookup shard by trace."""
    printed = _printed("--cluster", CLUSTER, "--ttl-days", "30")
    distributed = {}
    undone = []
    for statement in printed:
        if match := DISTRIBUTED.match(statement):
            table, local, local_again, key = match.groups()
            assert local == local_again == f"{table}_local"
            distributed[table] = key
            continue
        assert " ON CLUSTER `prod`" in statement.splitlines()[0]
        plain = statement.replace(" ON CLUSTER `prod`", "")
        plain = REPLICATED.sub(_unreplicated, plain)
        undone.append(re.sub(r"(`threadline`\.\w+)_local\b", r"\1", plain))

    assert undone == [s.strip() for s in ddl.statements("threadline", ttl_days=30)]
    assert distributed == {
        "spans": "cityHash64(trace_id)",
        "spans_incoming": "cityHash64(trace_id)",
        "trace_id_ts": "cityHash64(trace_id)",
        "logs": "rand()",
        "alert_states": "cityHash64(slo, alert)",
        "drill_results": "cityHash64(probe)",
        "documents": "cityHash64(name)",
        "threadline_schema": "rand()",
        "rollup_operations": "cityHash64(service)",
        "rollup_edges": "cityHash64(callee)",
        "rollup_names": "rand()",
        "rollup_exemplars": "cityHash64(trace_id)",
        "staged_spans": "cityHash64(trace_id)",
        "journey_steps": "cityHash64(trace_id)",
        "request_rollup": "rand()",
        "trace_rollup": "cityHash64(trace_id)",
        "pair_rollup": "rand()",
        "hop_rollup": "rand()",
        "orphan_spans": "cityHash64(trace_id)",
    }
    # Every MergeTree table became replicated; the views read and write local tables.
    assert not any(re.search(r"ENGINE = (?!Replicated)\w*MergeTree", s) for s in printed)
    # The kept operation names are the same on every node, the rest per shard.
    shared = [s for s in printed if "'/clickhouse/tables/all/" in s]
    assert len(shared) == 1
    assert "rollup_names_local ON CLUSTER" in shared[0]
    assert cluster.REPLICATED in "\n".join(printed)
    assert cluster.REPLICATED_REPLACING in "\n".join(printed)
    views = [s for s in printed if s.startswith("CREATE MATERIALIZED VIEW")]
    for view in views:
        head, body = view.split("\n", 1)
        assert "_local AS" in head
        assert all(name.endswith("_local") for name in re.findall(r"`threadline`\.(\w+)", body))


def test_single_node_ddl_runs_on_chdb(tmp_path: Path) -> None:
    """The printed single-node DDL creates every table and view on chDB, twice over."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'chdb'}")
    try:
        for _ in range(2):  # idempotent: a second run changes nothing
            for statement in _printed("--ttl-days", "30"):
                client.command(statement)
        engines = dict(
            client.query(
                "SELECT name, engine FROM system.tables WHERE database = 'threadline'"
            ).result_rows
        )
        assert engines == {
            "spans": "MergeTree",
            "spans_incoming": "Null",
            "spans_incoming_mv": "MaterializedView",
            "trace_id_ts": "MergeTree",
            "trace_id_ts_mv": "MaterializedView",
            "logs": "MergeTree",
            "alert_states": "ReplacingMergeTree",
            "drill_results": "ReplacingMergeTree",
            "documents": "ReplacingMergeTree",
            "threadline_schema": "MergeTree",
            "rollup_operations": "SummingMergeTree",
            "rollup_operations_mv": "MaterializedView",
            "rollup_edges": "SummingMergeTree",
            "rollup_names": "ReplacingMergeTree",
            "rollup_exemplars": "ReplacingMergeTree",
            "rollup_exemplars_mv": "MaterializedView",
            "staged_spans": "MergeTree",
            "journey_steps": "AggregatingMergeTree",
            "journey_steps_mv": "MaterializedView",
            "request_rollup": "SummingMergeTree",
            "request_rollup_mv": "MaterializedView",
            "trace_rollup": "AggregatingMergeTree",
            "trace_rollup_mv": "MaterializedView",
            "pair_rollup": "SummingMergeTree",
            "hop_rollup": "SummingMergeTree",
            "orphan_spans": "SummingMergeTree",
        }
        with pytest.raises(ClickHouseError):  # no cluster here: why the script is not run
            client.command(_printed("--cluster", CLUSTER)[0])
    finally:
        client.close()


def test_on_a_cluster_deletes_and_merges_go_to_the_local_tables() -> None:
    """A clustered store's DELETE and OPTIMIZE name ``T_local ON CLUSTER``; reads name ``T``."""
    tables = Tables.of("threadline", "prod")
    assert tables.parts_of("spans") == "`threadline`.spans_local ON CLUSTER `prod`"
    assert tables.spans == "`threadline`.spans"
    assert tables.system_parts == "cluster('prod', system.parts)"
    single = Tables.of("threadline")
    assert single.parts_of("spans") == single.spans == "`threadline`.spans"
    # Every table the script makes local is one a clustered store checks for.
    printed = "\n".join(_printed("--cluster", CLUSTER))
    assert set(re.findall(r"`threadline`\.(\w+)_local ON CLUSTER", printed)) == set(
        cluster.SHARDING_KEYS
    )


def test_a_cluster_store_refuses_to_start_without_the_cluster_tables(tmp_path: Path) -> None:
    """Pointed at a database without the cluster's tables, opening says which command makes them."""
    url = StoreUrl(backend="chdb", path=tmp_path / "chdb", cluster="prod")
    with pytest.raises(StoreError, match=r"threadline store ddl --cluster prod --database"):
        ClickHouseStore(url)


def test_the_version_4_step_changes_the_local_and_the_distributed_span_tables() -> None:
    """On a cluster the step changes the resource column of the local tables, where the
    parts are, and of the ``Distributed`` table reads and inserts go through, and the
    codecs on the local tables; on one node the tables themselves. (chDB runs the
    single-node form in the migration tests.)"""
    change = f"MODIFY COLUMN resource {schema.RESOURCE_MAP} CODEC(ZSTD(1))"
    on_cluster = versions.version_4(Tables.of("threadline", CLUSTER))
    single = versions.version_4(Tables.of("threadline"))
    assert [s.split(" MODIFY")[0] for s in on_cluster] == [
        "ALTER TABLE `threadline`.spans_local ON CLUSTER `prod`",
        "ALTER TABLE `threadline`.spans ON CLUSTER `prod`",
        *(f"ALTER TABLE `threadline`.{t}_local ON CLUSTER `prod`" for t in versions.CODEC_TABLES),
    ]
    assert [s.split(" MODIFY")[0] for s in single] == [
        "ALTER TABLE `threadline`.spans",
        *(f"ALTER TABLE `threadline`.{table}" for table in versions.CODEC_TABLES),
    ]
    assert [change in s for s in on_cluster[:3]] == [True, True, False]
    assert change in single[0]
    # Each table's columns get the codecs its CREATE statement names, on both forms.
    for table, local, alone in zip(versions.CODEC_TABLES, on_cluster[2:], single[1:], strict=True):
        declared = versions.declared_codecs("threadline")[table]
        assert declared, table
        clauses = ", ".join(f"MODIFY COLUMN {c} CODEC({codec})" for c, codec in declared)
        assert local.endswith(clauses)
        assert alone.endswith(clauses)
    assert ("length_ns", "T64, ZSTD(1)") in versions.declared_codecs("threadline")["spans"]
