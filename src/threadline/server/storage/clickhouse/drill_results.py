"""Scheduled drills' results on ClickHouse: one versioned row per probe, its history.

``drill_results`` is a ``ReplacingMergeTree(version)`` keyed by probe. A row holds
the probe's whole kept history as parallel arrays (one element per run, newest
first). Saving reads the probe's current history, puts the new run in it, trims it
to the newest ``keep`` and inserts it as one new version of the row. One row is one
insert block, written whole or not at all, so the new run and the trim land
together (all or none) with no transaction: no reader ever sees the run without the
trim, or the trim without the run. An insert and a lightweight ``DELETE`` of the
older runs would be two statements, and a failure between them would leave the
history over ``keep``. Merges keep one version per probe, so the table stays one
row per probe however long the server runs; reads take the newest (``FINAL``, on
a table of a few rows) and unroll it with ``ARRAY JOIN``.

Saves are serialised in this process (read, then insert); a probe is run by one
scheduler at a time, so two processes saving the same probe at once are not
expected (the later insert's history would win). Versions are nanosecond times made
strictly increasing within the process, as ``alert_states`` makes them.

Results name synthetic traces, never users: retention and erasure leave them alone.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Final

from threadline.server.drills.record import DrillProblem, DrillResult
from threadline.server.storage.clickhouse import schema
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.tables import Fetch, Row, Tables

# The per-run array columns, in the order of ``DrillResult``'s fields after ``probe``.
_RUN_COLUMNS: Final = (
    "started_ns",
    "duration_ns",
    "passed",
    "journey_id",
    "trace_ids",
    "services",
    "problems",
    "verdict",
)
_SELECT: Final = f"SELECT probe, {', '.join(_RUN_COLUMNS)}"

_save_lock = threading.Lock()
_last_version = 0


def save(connection: Connection, t: Tables, result: DrillResult, keep: int) -> None:
    """Insert ``result`` and the newest ``keep`` of its probe's earlier runs as one row."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    with _save_lock:
        rows = connection.rows(
            f"{_SELECT} FROM {t.drill_results} FINAL"
            f" ARRAY JOIN {', '.join(_RUN_COLUMNS)} WHERE probe = {{probe:String}}",
            {"probe": result.probe},
            doing="reading a probe's drill results",
        )
        runs = [result, *(_result(row) for row in rows)]
        # Stable: a run saved again at the same start time sits before the older copy.
        runs.sort(key=lambda run: run.started_ns, reverse=True)
        kept = runs[:keep]
        connection.insert_rows(
            schema.DRILL_RESULTS,
            ["probe", *_RUN_COLUMNS, "version"],
            [
                [
                    result.probe,
                    [run.started_ns for run in kept],
                    [run.duration_ns for run in kept],
                    [int(run.passed) for run in kept],
                    [run.journey_id for run in kept],
                    [list(run.trace_ids) for run in kept],
                    [list(run.services) for run in kept],
                    [json.dumps([p.to_json() for p in run.problems]) for run in kept],
                    [run.verdict for run in kept],
                    _next_version(),
                ]
            ],
            doing="saving a drill result",
        )


def load(
    fetch: Fetch, t: Tables, probe: str | None, limit: int, failed: bool | None
) -> list[DrillResult]:
    """The newest ``limit`` results of each probe (or of ``probe``), by probe name then
    newest first; ``failed`` keeps only failed (True) or passed (False) runs."""
    where: list[str] = []
    params: dict[str, object] = {"limit": max(limit, 0)}
    if probe is not None:
        where.append("probe = {probe:String}")
        params["probe"] = probe
    if failed is not None:
        where.append("passed = {passed:UInt8}")
        params["passed"] = int(not failed)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    rows = fetch(
        f"{_SELECT} FROM {t.drill_results} FINAL ARRAY JOIN {', '.join(_RUN_COLUMNS)}"
        f"{condition} ORDER BY probe, started_ns DESC LIMIT {{limit:UInt64}} BY probe",
        params,
    )
    return [_result(row) for row in rows]


def _next_version() -> int:
    global _last_version
    _last_version = max(time.time_ns(), _last_version + 1)
    return _last_version


def _result(row: Row) -> DrillResult:
    probe, started, duration, passed, journey, trace_ids, services, problems, verdict = row
    return DrillResult(
        probe=str(probe),
        started_ns=int(started),
        duration_ns=int(duration),
        passed=bool(passed),
        journey_id=str(journey),
        trace_ids=tuple(str(trace_id) for trace_id in trace_ids),
        services=tuple(str(service) for service in services),
        problems=tuple(DrillProblem.from_json(item) for item in json.loads(problems)),
        verdict=str(verdict),
    )
