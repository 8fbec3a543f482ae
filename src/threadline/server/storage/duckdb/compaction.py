"""Rewriting the store into a fresh file, so deleted rows leave the disk files.

DuckDB never overwrites what a ``DELETE`` removed: the row stays in its row group
until the whole group is gone, and a freed block keeps its bytes until reused. An
erasure that must not leave a byte of the user behind, and a size cap on a store
whose deletes freed no block, therefore copy the live rows into a new file and put
it in place of the old one:

1. ``COPY FROM DATABASE`` (tables, their rows and their indexes) into
   ``<db>.compact`` on the open connection, then detach it (which checkpoints it);
2. close the connection (DuckDB checkpoints the old file and drops its WAL);
3. remove any leftover WAL of the old file, which must never be replayed onto the
   new one, and rename the new file over the old (atomic on POSIX);
4. the caller opens the file again.

A crash before the rename leaves the old file, complete; ``discard_leftovers`` then
removes the half-written copy at the next open. A crash after it leaves the new one.
Files are created readable by their owner only (see ``private_files``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Final

import duckdb

logger = logging.getLogger(__name__)

COMPACT_SUFFIX: Final = ".compact"
_ALIAS: Final = "threadline_compact"
# What the store's files and, if it creates one, its directory are created with:
# spans hold what users did, so nobody but the server's own user may read them.
FILE_MODE: Final = 0o600
DIRECTORY_MODE: Final = 0o700


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def compact_path_of(path: Path) -> Path:
    return path.with_name(path.name + COMPACT_SUFFIX)


def store_files(path: Path) -> list[Path]:
    """The store's files that exist now: the database, its WAL and a compaction copy."""
    compact = compact_path_of(path)
    candidates = (path, wal_of(path), compact, wal_of(compact))
    return [candidate for candidate in candidates if candidate.exists()]


def prepare_directory(path: Path) -> None:
    """Create the store's directory (owner-only) if it is missing."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)


def private_files(path: Path) -> None:
    """Make every existing file of the store owner-only (0600)."""
    for file in store_files(path):
        with contextlib.suppress(OSError):  # not ours to change: opening reports it
            os.chmod(file, FILE_MODE)


def discard_leftovers(path: Path) -> None:
    """Remove a compaction copy that a crash left before its rename."""
    compact = compact_path_of(path)
    for leftover in (compact, wal_of(compact)):
        if leftover.exists():
            logger.warning("removing %s, left by a compaction that did not finish", leftover)
            leftover.unlink()


def copy_live_rows(connection: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """Step 1: the live rows of the open store, copied into ``<db>.compact``."""
    target = compact_path_of(path)
    discard_leftovers(path)
    database = connection.execute("SELECT current_database()").fetchall()[0][0]
    quoted_target = str(target).replace("'", "''")
    quoted_database = '"' + str(database).replace('"', '""') + '"'
    alias = _ALIAS if database != _ALIAS else _ALIAS + "_copy"  # a store file named so
    connection.execute(f"ATTACH '{quoted_target}' AS {alias}")
    try:
        try:
            connection.execute(f"COPY FROM DATABASE {quoted_database} TO {alias}")
        finally:
            connection.execute(f"DETACH {alias}")
    except BaseException:
        discard_leftovers(path)
        raise
    os.chmod(target, FILE_MODE)
    _fsync(target)
    return target


def swap_in(copy: Path, path: Path) -> None:
    """Step 3: with the old file closed, the copy takes its place; its WAL goes."""
    wal = wal_of(path)
    if wal.exists():
        # Closing checkpointed everything the copy holds; replaying this log onto the
        # new file would corrupt it.
        wal.unlink()
    os.replace(copy, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
