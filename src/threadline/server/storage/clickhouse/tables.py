"""The names of one store's tables, and the read function queries are given.

Reads and inserts name ``T`` (on a cluster, the ``Distributed`` table over the shards).
ClickHouse takes a lightweight ``DELETE`` or an ``OPTIMIZE`` only on the tables that
hold the parts, so on a cluster those go to ``T_local ON CLUSTER <name>`` (see
``cluster.py``); on one node they go to ``T`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from threadline.server.storage.clickhouse import document_table, schema
from threadline.server.storage.clickhouse.cluster import LOCAL_SUFFIX

Row = tuple[Any, ...]
# Runs one read statement with its named parameters and returns every row.
Fetch = Callable[[str, Mapping[str, object]], list[Row]]


@dataclass(frozen=True, slots=True)
class Tables:
    database: str
    cluster: str
    spans: str
    incoming: str
    trace_ts: str
    logs: str
    alert_states: str
    drill_results: str
    documents: str
    versions: str

    @staticmethod
    def of(database: str, cluster: str = "") -> Tables:
        db = schema.quote(database)
        return Tables(
            database=database,
            cluster=cluster,
            spans=f"{db}.{schema.SPANS}",
            incoming=f"{db}.{schema.SPANS_INCOMING}",
            trace_ts=f"{db}.{schema.TRACE_ID_TS}",
            logs=f"{db}.{schema.LOGS}",
            alert_states=f"{db}.{schema.ALERT_STATES}",
            drill_results=f"{db}.{schema.DRILL_RESULTS}",
            documents=f"{db}.{document_table.DOCUMENTS}",
            versions=f"{db}.{schema.VERSION_TABLE}",
        )

    def parts_of(self, table: str) -> str:
        """Where the parts of ``table`` (a name from ``schema``) are: the target of a
        ``DELETE`` or an ``OPTIMIZE``."""
        db = schema.quote(self.database)
        if not self.cluster:
            return f"{db}.{table}"
        return f"{db}.{table}{LOCAL_SUFFIX} ON CLUSTER {schema.quote(self.cluster)}"

    def parts_table(self, table: str) -> str:
        """The name ``system.parts`` lists ``table``'s parts under."""
        return f"{table}{LOCAL_SUFFIX}" if self.cluster else table

    @property
    def system_parts(self) -> str:
        """``system.parts``, of one replica of every shard on a cluster."""
        if not self.cluster:
            return "system.parts"
        return f"cluster('{self.cluster}', system.parts)"
