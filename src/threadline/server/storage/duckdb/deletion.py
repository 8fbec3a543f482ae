"""Deleting spans from DuckDB: by trace (tail sampling), by age (retention), by user
(erasure, which takes the user's log records too), and measuring size.

The store runs these deletes on the group-commit writer, each in a transaction of
its own together with the rollup subtraction (``rollups.forget_*``), so spans and
rollups never disagree; reads do not wait for them.

Each delete of spans also deletes their copies kept apart (``kept_apart``).

A ``DELETE`` only marks rows deleted: a row group keeps its blocks (and the deleted
values in them) until every row of it is gone, and a freed block keeps its old bytes
until it is reused. ``used_bytes`` therefore measures the blocks in use after a
checkpoint, which is what deleting can actually give back; erasure and a size cap
that deleting alone cannot meet rewrite the file (``compaction``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import duckdb

from threadline.server.storage.duckdb import kept_apart, logs
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Conditions, Row, traces_in

logger = logging.getLogger(__name__)

Execute = Callable[[str, Sequence[object]], list[Row]]

# Attribute keys that name the person a span was for (OpenTelemetry semantic
# conventions, current and deprecated). ``user.id`` also fills the ``user_id`` column;
# the others are found in the span and resource attribute maps.
IDENTITY_KEYS: Final[tuple[str, ...]] = (
    "user.id",
    "enduser.id",
    "enduser.pseudo.id",
    "user.email",
    "user.name",
)
_PATHS: Final = "[" + ", ".join(f"'$.\"{key}\"'" for key in IDENTITY_KEYS) + "]"

_DELETE_OLDER: Final = f"DELETE FROM {TABLE} WHERE start_ns < ?"

# The spans that name the user in any form: the ``user_id`` column or an identity key
# of the span's or its resource's attributes. ``$1`` is the list of forms.
_CARRIES_USER: Final = f"""
    user_id IN (SELECT unnest($1::VARCHAR[]))
    OR list_has_any(json_extract_string(attributes, {_PATHS}), $1::VARCHAR[])
    OR list_has_any(json_extract_string(resource, {_PATHS}), $1::VARCHAR[])
"""

# A journey is its sessions' traces (docs/server.md): every trace with a span of the
# user, or of a session the user had, goes whole. The one statement of that rule:
# erasure deletes these traces (``delete_traces``), and the rollups subtract the same ones.
_USER_TRACES: Final = f"""
SELECT DISTINCT trace_id FROM {TABLE}
WHERE {_CARRIES_USER}
   OR session_id IN (
       SELECT DISTINCT session_id FROM {TABLE}
       WHERE session_id IS NOT NULL AND ({_CARRIES_USER})
   )
"""

# How many spans carry each form, for the erasure report.
_SPANS_PER_FORM: Final = f"""
SELECT form, (
    SELECT count(*) FROM {TABLE}
    WHERE user_id = form
       OR list_contains(json_extract_string(attributes, {_PATHS}), form)
       OR list_contains(json_extract_string(resource, {_PATHS}), form)
) FROM (SELECT unnest($1::VARCHAR[]) AS form)
"""

# Over spans and log records together: a store that holds mostly log lines (or only
# them) must still find the time before which a size cap's share of its rows lies.
_QUANTILE: Final = f"""
SELECT quantile_disc(at_ns, ?) FROM (
    SELECT start_ns AS at_ns FROM {TABLE} UNION ALL SELECT time_ns FROM {logs.LOGS}
)
"""
_USED_BYTES: Final = "SELECT block_size * used_blocks FROM pragma_database_size()"


def delete_traces(
    execute: Execute, trace_ids: Sequence[str], within: Conditions | None = None
) -> int:
    """Delete the spans of ``trace_ids`` and their copies; ``within``: where they start
    (``summaries.traces_span``), or ``None`` to find them in the whole table."""
    if not trace_ids:
        return 0
    kept_apart.forget_traces(execute, trace_ids, within)
    doomed = traces_in(trace_ids, within)
    return _count(execute(f"DELETE FROM {TABLE}{doomed.sql('WHERE')}", doomed.params))


def delete_older_than(execute: Execute, cutoff_ns: int) -> int:
    kept_apart.forget_before(execute, cutoff_ns)
    return _count(execute(_DELETE_OLDER, [cutoff_ns]))


def spans_per_form(execute: Execute, forms: Sequence[str]) -> dict[str, int]:
    """How many stored spans carry each of ``forms`` in an identity field."""
    if not forms:
        return {}
    rows = execute(_SPANS_PER_FORM, [list(forms)])
    return {str(row[0]): int(row[1]) for row in rows}


def user_trace_ids(execute: Execute, forms: Sequence[str]) -> list[str]:
    """The traces ``erase_user`` deletes for a user known by any of ``forms``."""
    if not forms:
        return []
    return [str(row[0]) for row in execute(_USER_TRACES, [list(forms)])]


def erase_user_logs(execute: Execute, forms: Sequence[str], trace_ids: Sequence[str]) -> int:
    """Delete the log records of a user known by any of ``forms``: those naming the
    user, those of the user's sessions, and those of ``trace_ids``."""
    return logs.erase_user(execute, forms, trace_ids, _CARRIES_USER, TABLE)


def start_ns_quantile(execute: Execute, fraction: float) -> int | None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rows = execute(_QUANTILE, [fraction])
    value = rows[0][0] if rows else None
    return None if value is None else int(value)


def used_bytes(connection: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Blocks in use after a checkpoint, plus the write-ahead log, in bytes.

    Run it where no write is in flight (the store runs it on its writer, between two
    writes): a write transaction open elsewhere blocks the checkpoint, and the log
    then counts too."""
    cursor = connection.cursor()
    try:
        try:
            cursor.execute("CHECKPOINT")
        except duckdb.Error as exc:
            logger.debug("checkpoint before measuring the store skipped: %s", exc)
        rows = cursor.execute(_USED_BYTES).fetchall()
    finally:
        cursor.close()
    used = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    wal = path.with_name(path.name + ".wal")
    return used + (wal.stat().st_size if wal.exists() else 0)


def _count(rows: list[Row]) -> int:
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
