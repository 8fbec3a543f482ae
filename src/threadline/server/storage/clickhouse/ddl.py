"""Every single-node statement of a ClickHouse store's schema, in the order to run them.

The spans, logs and state tables (``schema``), then the rollup tables and their views
(``rollup_tables``), which read ``spans``. ``versions`` runs these on open, ``cluster``
derives the replicated, sharded form from them, and ``threadline store ddl`` prints
them.
"""

from __future__ import annotations

from threadline.server.storage.clickhouse import rollup_tables, schema


def statements(database: str, *, ttl_days: int | None = None) -> list[str]:
    return [
        *schema.statements(database, ttl_days=ttl_days),
        *rollup_tables.statements(database, ttl_days=ttl_days),
    ]
