"""Building the rollups of a store written before they existed, when it is opened.

A store whose rollup tables are missing gets them created and filled from its
spans, a range of minutes at a time, each range in a transaction of its own and
logged as it completes, so a large store shows how far it has come. Opening a
store that has the tables costs one catalog lookup. This is one migration step:
``needs_rollups`` says whether it applies, ``ensure_rollups`` runs it.

Spans stored twice before re-sent spans were dropped at ingest are counted twice.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import Final

import duckdb

from threadline.server.storage.duckdb import rollups
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Row

logger = logging.getLogger(__name__)

# Ranges a backfill is split into: enough to show progress, few enough that the
# fixed cost of each pass over the (zone-map pruned) span table stays small.
STEPS: Final = 20


def needs_rollups(connection: duckdb.DuckDBPyConnection) -> bool:
    rows = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [rollups.SERVICES]
    ).fetchall()
    return int(rows[0][0]) == 0


def ensure_rollups(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup tables; fill them from the stored spans if they were missing."""
    missing = needs_rollups(connection)
    for statement in rollups.create_statements():
        connection.execute(statement)
    if not missing:
        return
    bounds = connection.execute(f"SELECT min(start_ns), max(start_ns) FROM {TABLE}").fetchall()
    low, high = bounds[0]
    if low is None:
        return
    first = int(low) // rollups.MINUTE_NS
    last = int(high) // rollups.MINUTE_NS + 1
    step = max(1, -(-(last - first) // STEPS))
    edges = [*range(first, last, step), last]
    started = time.perf_counter()

    def run(sql: str, params: Sequence[object]) -> list[Row]:
        return connection.execute(sql, params).fetchall()

    for done, (start, end) in enumerate(itertools.pairwise(edges), start=1):
        connection.execute("BEGIN TRANSACTION")
        try:
            rollups.rebuild(run, start * rollups.MINUTE_NS, end * rollups.MINUTE_NS)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        logger.info(
            "building rollups from stored spans: %d of %d ranges done (%.1f s)",
            done,
            len(edges) - 1,
            time.perf_counter() - started,
        )
