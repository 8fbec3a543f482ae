"""Keeping the ClickHouse journey steps beside the spans: backfill and deletions.

Ingest needs no code here: ``journey_steps_mv`` adds each insert block's step rows
(``journey_schema.py``), and the writer drops re-sent spans before the insert.
What the view cannot see is a deletion, so each deletion of spans deletes the
step rows of the same traces:

- tail sampling and erasure delete whole traces: their rows go (``forget_traces``);
- retention deletes the spans that started before a cutoff: traces wholly before it
  lose their rows, and a trace cut by it gets its rows rebuilt from the spans it
  keeps (``cut_traces`` before the span delete, ``forget_before`` and ``rebuild``
  after), as the DuckDB store recounts cut traces.

``backfill`` fills the table from the spans already stored (with the entry spans'
attributes, and the failed traces' error origins, ``journey_origins``), for a database created
before the table existed (schema version 1): the view only sees inserts made after
it was created. ``backfill_on`` runs it on a ``Connection``, as opening a store
(``versions.open_schema``) would when it upgrades a version 1 database. Rows the
view added meanwhile do no harm (every column's aggregate is idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from threadline.server.storage.clickhouse import journey_origins, journey_schema
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Runs one statement that returns nothing.
Command = journey_origins.Command

_DAY_NS: Final = 86_400 * 1_000_000_000


steps_table = journey_origins.steps_table


def forget_traces(command: Command, t: Tables, trace_ids: Sequence[str]) -> None:
    """Tail sampling and erasure delete whole traces: their step rows go with them."""
    if trace_ids:
        command(
            f"DELETE FROM {t.parts_of(journey_schema.TABLE)}"
            " WHERE trace_id IN {ids:Array(String)}",
            {"ids": list(trace_ids)},
        )


def cut_traces(fetch: Fetch, t: Tables, cutoff_ns: int) -> list[str]:
    """Traces with spans on both sides of ``cutoff_ns``: read before retention deletes
    the spans before it, so their steps can be rebuilt from the spans left."""
    rows = fetch(
        f"SELECT trace_id FROM {steps_table(t)}"
        f" WHERE trace_id IN (SELECT trace_id FROM {steps_table(t)}"
        " WHERE start_ns < {cutoff:Int64})"
        " GROUP BY trace_id HAVING max(last_start_ns) >= {cutoff:Int64}"
        # On a cluster each shard answers for its own traces (sharded by trace id).
        " SETTINGS distributed_product_mode = 'local'",
        {"cutoff": cutoff_ns},
    )
    return [str(row[0]) for row in rows]


def forget_before(command: Command, t: Tables, cutoff_ns: int, cut: Sequence[str]) -> None:
    """Delete the rows of traces that started before ``cutoff_ns`` and every row of
    the ``cut`` traces (``rebuild`` adds theirs back)."""
    command(
        f"DELETE FROM {t.parts_of(journey_schema.TABLE)} WHERE start_ns < {{cutoff:Int64}}",
        {"cutoff": cutoff_ns},
    )
    forget_traces(command, t, cut)


def rebuild(command: Command, t: Tables, cut: Sequence[str], cutoff_ns: int) -> None:
    """Step rows of the ``cut`` traces from their spans left after the cutoff."""
    if not cut:
        return
    source = (
        f"(SELECT {journey_schema.SPAN_COLUMNS} FROM {t.spans} WHERE start_ns >= {{cutoff:Int64}}"
        " AND trace_id IN {ids:Array(String)})"
    )
    command(
        f"INSERT INTO {steps_table(t)} {journey_schema.step_rows(source)}",
        {"cutoff": cutoff_ns, "ids": list(cut)},
    )


def backfill(fetch: Fetch, command: Command, t: Tables) -> int:
    """Add the step rows of every stored span, one day of spans (by start) per
    statement, then the error origins of the failed traces (as a merge names them);
    returns the days' statements run. For a database whose spans predate the table
    (version 1)."""
    day = {"day": _DAY_NS}
    days = fetch(
        f"SELECT DISTINCT intDiv(start_ns, {{day:Int64}}) AS d FROM {t.spans} ORDER BY d", day
    )
    for (number,) in days:
        source = (
            f"(SELECT {journey_schema.SPAN_COLUMNS} FROM {t.spans}"
            " WHERE intDiv(start_ns, {day:Int64}) = {d:Int64})"
        )
        command(
            f"INSERT INTO {steps_table(t)} {journey_schema.step_rows(source)}",
            {**day, "d": int(number)},
        )
    journey_origins.set_origins(fetch, command, t)
    return len(days)


def backfill_on(connection: Connection, t: Tables) -> int:
    """``backfill`` through ``connection`` (run after the table and its view exist)."""
    doing = "filling the journey steps from the stored spans"
    return backfill(
        lambda sql, params: connection.rows(sql, params, doing=doing),
        lambda sql, params: connection.command(sql, params, doing=doing),
        t,
    )
