"""Every single-node statement of a ClickHouse store's schema, in the order to run them.

The spans, logs and state tables (``schema``), then the rollup tables and their views
(``rollup_tables``), which read ``spans``. ``versions`` runs these on open, ``cluster``
derives the replicated, sharded form from them, and ``threadline store ddl`` prints
them.
"""

from __future__ import annotations

import re
from typing import Final

from threadline.server.storage.clickhouse import rollup_tables, schema

# A statement that makes a table: its database (quoted) and the table's name.
CREATE_TABLE: Final = re.compile(r"^CREATE TABLE IF NOT EXISTS (\S+)\.(\w+) \(")


def statements(database: str, *, ttl_days: int | None = None) -> list[str]:
    return [
        *schema.statements(database, ttl_days=ttl_days),
        *rollup_tables.statements(database, ttl_days=ttl_days),
    ]
