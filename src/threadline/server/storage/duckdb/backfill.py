"""Filling the rollups of a file written before they existed: schema version 3; and
the trace summaries: schema version 4 (``fill_summaries``).

The step (``migrations._add_rollups``) creates the rollup tables and counts every
stored span, a range of minutes at a time, logging each range as it completes, so
a large store shows how far it has come. It all runs in the step's transaction:
a file killed mid-backfill reopens at version 2, with no rollup tables, and the
step runs again from the start.

Spans stored twice before re-sent spans were dropped at ingest are counted twice.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Final

import duckdb

from threadline.server.storage.duckdb import rollups, summaries
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import fetcher

logger = logging.getLogger(__name__)

# Ranges a backfill is split into: enough to show progress, few enough that the
# fixed cost of each pass over the (zone-map pruned) span table stays small.
RANGES: Final = 20


def fill(
    connection: duckdb.DuckDBPyConnection,
    rebuild: Callable[[rollups.Run, int, int], None] = rollups.rebuild,
    what: str = "rollups",
) -> None:
    """Count every stored span into the (empty) rollup tables, in the open transaction.

    ``rebuild`` counts one range (``rollups.rebuild`` for version 3's tables,
    ``rollups.rebuild_slo_tables`` for version 7's); ``what`` names them in the log.
    """
    _by_ranges(connection, rebuild, f"building {what} from stored spans")


def fill_summaries(connection: duckdb.DuckDBPyConnection) -> None:
    """Summarise every stored trace into the (empty) summary table, in the open transaction.

    A range of minutes at a time, each logged; a trace spread over ranges gets a row
    from each, and the fold that ends the backfill merges them and finds the origins.
    """
    started = time.perf_counter()
    run = _by_ranges(connection, summaries.rebuild, "summarising stored traces")
    if run is None:
        return
    summaries.fold(run, steps=False)  # the journey tables come at version 9
    logger.info(
        "summarising stored traces: rows merged, error origins found (%.1f s)",
        time.perf_counter() - started,
    )


def _by_ranges(
    connection: duckdb.DuckDBPyConnection,
    rebuild: Callable[[rollups.Run, int, int], None],
    doing: str,
) -> rollups.Run | None:
    """Call ``rebuild`` on each of ``RANGES`` ranges of whole minutes covering the stored
    spans, logging ``doing`` and the progress after each; the statement runner it used,
    or ``None`` when no span is stored (nothing to do)."""
    bounds = connection.execute(f"SELECT min(start_ns), max(start_ns) FROM {TABLE}").fetchall()
    low, high = bounds[0]
    if low is None:
        return None
    first = int(low) // rollups.MINUTE_NS
    last = int(high) // rollups.MINUTE_NS + 1
    step = max(1, -(-(last - first) // RANGES))
    edges = [*range(first, last, step), last]
    started = time.perf_counter()

    run = fetcher(connection)
    for done, (start, end) in enumerate(itertools.pairwise(edges), start=1):
        rebuild(run, start * rollups.MINUTE_NS, end * rollups.MINUTE_NS)
        logger.info(
            "%s: %d of %d ranges done (%.1f s)",
            doing,
            done,
            len(edges) - 1,
            time.perf_counter() - started,
        )
    return run
