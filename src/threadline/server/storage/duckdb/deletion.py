"""Deleting spans from DuckDB: by trace (tail sampling), by age (retention), by user
(erasure), and measuring size.

Deletes run on a cursor of their own, beside the group-commit writer: DuckDB's
optimistic concurrency lets an ``INSERT`` of new spans and a ``DELETE`` of old ones
commit side by side, so neither ingest nor reads wait for retention.

Deleted rows free their blocks at the next checkpoint; DuckDB reuses them, so the
file stops growing rather than shrinking. ``size_bytes`` therefore counts the blocks
in use (after a best-effort checkpoint) plus the write-ahead log, not the file size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import duckdb

from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Row

logger = logging.getLogger(__name__)

Execute = Callable[[str, Sequence[object]], list[Row]]

_DELETE_OLDER: Final = f"DELETE FROM {TABLE} WHERE start_ns < ?"
_DELETE_TRACES: Final = f"DELETE FROM {TABLE} WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"

# A journey is its sessions' traces (docs/server.md): every trace with a span of the
# user, or of a session the user had, goes whole.
_ERASE_USER: Final = f"""
DELETE FROM {TABLE} WHERE trace_id IN (
    SELECT DISTINCT trace_id FROM {TABLE}
    WHERE user_id = ?
       OR session_id IN (
           SELECT DISTINCT session_id FROM {TABLE}
           WHERE user_id = ? AND session_id IS NOT NULL
       )
)
"""

_QUANTILE: Final = f"SELECT quantile_disc(start_ns, ?) FROM {TABLE}"
_USED_BYTES: Final = "SELECT block_size * used_blocks FROM pragma_database_size()"


def delete_traces(execute: Execute, trace_ids: Sequence[str]) -> int:
    if not trace_ids:
        return 0
    return _count(execute(_DELETE_TRACES, [list(trace_ids)]))


def delete_older_than(execute: Execute, cutoff_ns: int) -> int:
    return _count(execute(_DELETE_OLDER, [cutoff_ns]))


def erase_user(execute: Execute, user_id: str) -> int:
    return _count(execute(_ERASE_USER, [user_id, user_id]))


def start_ns_quantile(execute: Execute, fraction: float) -> int | None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rows = execute(_QUANTILE, [fraction])
    value = rows[0][0] if rows else None
    return None if value is None else int(value)


def size_bytes(connection: duckdb.DuckDBPyConnection, path: Path) -> int:
    cursor = connection.cursor()
    try:
        try:
            cursor.execute("CHECKPOINT")
        except duckdb.Error as exc:
            # A write in flight blocks the checkpoint; the size is then a little stale.
            logger.debug("checkpoint before measuring the store skipped: %s", exc)
        rows = cursor.execute(_USED_BYTES).fetchall()
    finally:
        cursor.close()
    used = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    wal = path.with_name(path.name + ".wal")
    return used + (wal.stat().st_size if wal.exists() else 0)


def _count(rows: list[Row]) -> int:
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
