"""Scheduled drills' results: one row per run, the newest ``keep`` per probe kept.

Saving inserts the run and deletes that probe's rows beyond the newest ``keep`` in
the same transaction on the writer, so the table stays a few rows per probe however
long the server runs. Results name synthetic traces, never users: retention and
erasure leave them alone (a result may outlive its traces; its verdict text stays).
"""

from __future__ import annotations

import json
from typing import Final

from threadline.server.drills.record import DrillProblem, DrillResult
from threadline.server.storage.duckdb.schema import DRILL_RESULTS
from threadline.server.storage.duckdb.sql import Fetch, Row

_COLUMNS: Final = (
    "probe, started_ns, duration_ns, passed, journey_id, trace_ids, services, problems, verdict"
)


def save(run: Fetch, result: DrillResult, keep: int) -> int:
    """Insert ``result`` and trim its probe's history to ``keep`` rows (in the caller's
    transaction); returns the rows written."""
    run(
        f"INSERT INTO {DRILL_RESULTS} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.probe,
            result.started_ns,
            result.duration_ns,
            result.passed,
            result.journey_id,
            list(result.trace_ids),
            list(result.services),
            json.dumps([p.to_json() for p in result.problems]),
            result.verdict,
        ],
    )
    run(
        f"DELETE FROM {DRILL_RESULTS} WHERE probe = ? AND started_ns < ("
        f" SELECT min(started_ns) FROM (SELECT started_ns FROM {DRILL_RESULTS}"
        "  WHERE probe = ? ORDER BY started_ns DESC LIMIT ?))",
        [result.probe, result.probe, keep],
    )
    return 1


def load(fetch: Fetch, probe: str | None, limit: int, failed: bool | None) -> list[DrillResult]:
    """The newest ``limit`` results of each probe (or of ``probe``), by probe name then
    newest first; ``failed`` keeps only failed (True) or passed (False) runs."""
    where: list[str] = []
    params: list[object] = []
    if probe is not None:
        where.append("probe = ?")
        params.append(probe)
    if failed is not None:
        where.append("passed = ?")
        params.append(not failed)
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    rows = fetch(
        f"SELECT {_COLUMNS} FROM ("
        f" SELECT *, row_number() OVER (PARTITION BY probe ORDER BY started_ns DESC) AS n"
        f" FROM {DRILL_RESULTS} {condition})"
        " WHERE n <= ? ORDER BY probe, started_ns DESC",
        [*params, limit],
    )
    return [_result(row) for row in rows]


def _result(row: Row) -> DrillResult:
    probe, started, duration, passed, journey, trace_ids, services, problems, verdict = row
    return DrillResult(
        probe=str(probe),
        started_ns=int(started),
        duration_ns=int(duration),
        passed=bool(passed),
        journey_id=str(journey),
        trace_ids=tuple(trace_ids),
        services=tuple(services),
        problems=tuple(DrillProblem.from_json(item) for item in json.loads(problems)),
        verdict=str(verdict),
    )
