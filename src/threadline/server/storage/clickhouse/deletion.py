"""Deleting on ClickHouse: traces (tail sampling), by age (retention), by user (erasure).

Deletes are lightweight ``DELETE``s: rows are masked at once (no read sees them
after the statement returns) and purged from the parts by the next merge;
``compact`` forces that merge (``OPTIMIZE … FINAL``) so no byte of an erased span
stays in the files. The ``trace_id_ts`` rows and journey steps of deleted traces go
too (``journey_steps.py``: retention rebuilds the steps of the traces it cuts), and
the rollups subtract what is deleted first (``rollups.forget_*``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from threadline.server.storage.clickhouse import journey_steps, pair_rollups, rollups
from threadline.server.storage.clickhouse.schema import DATA_TABLES, LOGS, SPANS, TRACE_ID_TS
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Runs one statement that returns nothing.
Command = Callable[[str, Mapping[str, object]], None]

# Attribute keys naming the person a span was for (as the DuckDB store's).
IDENTITY_KEYS: Final[tuple[str, ...]] = (
    "user.id",
    "enduser.id",
    "enduser.pseudo.id",
    "user.email",
    "user.name",
)


def _carries_user(forms: str, *, maps: bool = True) -> str:
    """A span (or log record) naming one of the ``forms`` (an ``Array(String)``
    parameter) in ``user_id`` or an identity key of its attribute maps (JSON text of
    the values, compared parsed: see ``sql.map_value_is``)."""
    keys = "[" + ", ".join(f"'{key}'" for key in IDENTITY_KEYS) + "]"
    in_maps = " OR ".join(
        f"hasAny(arrayMap(k -> JSONExtractString({column}[k]),"
        f" arrayFilter(k -> mapContains({column}, k), {keys})), {forms})"
        for column in ("attributes", "resource")
    )
    return f"(has({forms}, user_id) OR {in_maps})" if maps else f"has({forms}, user_id)"


def delete_traces(fetch: Fetch, command: Command, t: Tables, trace_ids: Sequence[str]) -> int:
    if not trace_ids:
        return 0
    ids = {"ids": list(trace_ids)}
    found = _count(
        fetch(f"SELECT count() FROM {t.spans} WHERE trace_id IN {{ids:Array(String)}}", ids)
    )
    if found:
        rollups.forget_traces(fetch, command, t, trace_ids)
        pair_rollups.forget_traces(fetch, command, t, trace_ids)
        command(f"DELETE FROM {t.parts_of(SPANS)} WHERE trace_id IN {{ids:Array(String)}}", ids)
        command(
            f"DELETE FROM {t.parts_of(TRACE_ID_TS)} WHERE trace_id IN {{ids:Array(String)}}", ids
        )
        journey_steps.forget_traces(command, t, trace_ids)
    return found


def delete_older_than(fetch: Fetch, command: Command, t: Tables, cutoff_ns: int) -> int:
    cutoff = {"cutoff": cutoff_ns}
    found = _count(
        fetch(f"SELECT count() FROM {t.spans} WHERE start_ns < {{cutoff:Int64}}", cutoff)
    )
    if found:
        cut = journey_steps.cut_traces(fetch, t, cutoff_ns)
        rollups.forget_before(fetch, command, t, cutoff_ns)
        pair_rollups.forget_before(fetch, command, t, cutoff_ns)
        command(f"DELETE FROM {t.parts_of(SPANS)} WHERE start_ns < {{cutoff:Int64}}", cutoff)
        command(f"DELETE FROM {t.parts_of(TRACE_ID_TS)} WHERE end_ns < {{cutoff:Int64}}", cutoff)
        journey_steps.forget_before(command, t, cutoff_ns, cut)
        journey_steps.rebuild(command, t, cut, cutoff_ns)
    if fetch(f"SELECT 1 FROM {t.logs} WHERE time_ns < {{cutoff:Int64}} LIMIT 1", cutoff):
        command(f"DELETE FROM {t.parts_of(LOGS)} WHERE time_ns < {{cutoff:Int64}}", cutoff)
    return found


def spans_per_form(fetch: Fetch, t: Tables, forms: Sequence[str]) -> dict[str, int]:
    """How many stored spans carry each form in an identity field."""
    found: dict[str, int] = {}
    for form in forms:
        found[form] = _count(
            fetch(
                f"SELECT count() FROM {t.spans} WHERE {_carries_user('{forms:Array(String)}')}",
                {"forms": [form]},
            )
        )
    return found


def user_trace_ids(fetch: Fetch, t: Tables, forms: Sequence[str]) -> list[str]:
    """Every trace with a span of the user, or of a session the user had."""
    if not forms:
        return []
    carries = _carries_user("{forms:Array(String)}")
    rows = fetch(
        f"""SELECT DISTINCT trace_id FROM {t.spans}
        WHERE {carries} OR session_id IN (
            SELECT DISTINCT session_id FROM {t.spans}
            WHERE session_id IS NOT NULL AND {carries})""",
        {"forms": list(forms)},
    )
    return [str(row[0]) for row in rows]


def erase_user_logs(
    fetch: Fetch, command: Command, t: Tables, forms: Sequence[str], trace_ids: Sequence[str]
) -> None:
    """Delete the log records naming the user, of the user's sessions, or of ``trace_ids``.

    Log attributes are JSON text: an identity key is read with ``JSONExtractString``.
    """
    if not forms:
        return
    keys = ", ".join(f"'{key}'" for key in IDENTITY_KEYS)
    names_user = (
        "(has({forms:Array(String)}, user_id) OR hasAny("
        f"arrayMap(k -> JSONExtractString(attributes, k), [{keys}]), {{forms:Array(String)}})"
        " OR hasAny("
        f"arrayMap(k -> JSONExtractString(resource, k), [{keys}]), {{forms:Array(String)}}))"
    )
    spans_user = _carries_user("{forms:Array(String)}")
    condition = f"""{names_user}
        OR session_id IN (
            SELECT session_id FROM {t.logs} WHERE session_id IS NOT NULL AND {names_user}
            UNION DISTINCT
            SELECT session_id FROM {t.spans} WHERE session_id IS NOT NULL AND {spans_user})
        OR trace_id IN {{ids:Array(String)}}"""
    params = {"forms": list(forms), "ids": list(trace_ids)}
    if fetch(f"SELECT 1 FROM {t.logs} WHERE {condition} LIMIT 1", params):
        command(f"DELETE FROM {t.parts_of(LOGS)} WHERE {condition}", params)


def start_ns_quantile(fetch: Fetch, t: Tables, fraction: float) -> int | None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rows = fetch(
        f"SELECT count(), quantileExactLow({{f:Float64}})(start_ns) FROM {t.spans}",
        {"f": fraction},
    )
    return int(rows[0][1]) if rows and rows[0][0] else None


def size_bytes(fetch: Fetch, t: Tables) -> int:
    """Bytes of the active parts, less the share of span rows a lightweight delete
    masked (what a merge gives back)."""
    parts = fetch(
        f"SELECT sum(bytes_on_disk), sumIf(rows, table = {{spans:String}}) FROM {t.system_parts}"
        " WHERE active AND database = {db:String} AND table IN {tables:Array(String)}",
        {
            "db": t.database,
            "spans": t.parts_table(SPANS),
            "tables": [t.parts_table(table) for table in DATA_TABLES],
        },
    )
    on_disk, stored = (int(parts[0][0] or 0), int(parts[0][1] or 0)) if parts else (0, 0)
    if not stored:
        return on_disk
    live = _count(fetch(f"SELECT count() FROM {t.spans}", {}))
    return int(on_disk * min(1.0, live / stored))


def _count(rows: list[tuple[object, ...]]) -> int:
    value: Any = rows[0][0] if rows else 0
    return int(value or 0)
