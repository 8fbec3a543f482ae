"""The alerts' state, kept in the store file so a restart resumes where it was.

One row per alert (``slo`` × ``alert``). Saving replaces the rows of the alerts
given, in one transaction on the writer, so a crash leaves either the old states or
the new ones; the table is a handful of rows, so replacing beats an upsert's index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.storage.duckdb.schema import ALERT_STATES
from threadline.server.storage.duckdb.sql import Fetch, Row

_COLUMNS: Final = (
    "slo, alert, state, active_since_ns, updated_ns, firing_since_ns, resolved_ns, summary, labels"
)


def load(fetch: Fetch) -> list[AlertRecord]:
    rows = fetch(f"SELECT {_COLUMNS} FROM {ALERT_STATES} ORDER BY slo, alert", [])
    return [_record(row) for row in rows]


def save(run: Fetch, records: Sequence[AlertRecord], forget: Sequence[tuple[str, str]]) -> int:
    """Replace the rows of ``records`` and delete those of ``forget`` (in the caller's
    transaction); returns how many rows were written."""
    keys = [list(r.key) for r in records] + [list(key) for key in forget]
    if keys:
        run(
            f"DELETE FROM {ALERT_STATES} WHERE [slo, alert] IN (SELECT unnest(?::VARCHAR[][]))",
            [keys],
        )
    for r in records:
        run(
            f"INSERT INTO {ALERT_STATES} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                r.slo,
                r.alert,
                r.state.value,
                r.active_since_ns,
                r.updated_ns,
                r.firing_since_ns,
                r.resolved_ns,
                r.summary,
                json.dumps(dict(r.labels), sort_keys=True),
            ],
        )
    return len(records)


def _record(row: Row) -> AlertRecord:
    slo, alert, state, active, updated, firing, resolved, summary, labels = row
    return AlertRecord(
        slo=str(slo),
        alert=str(alert),
        state=AlertState(state),
        active_since_ns=int(active),
        updated_ns=int(updated),
        firing_since_ns=None if firing is None else int(firing),
        resolved_ns=None if resolved is None else int(resolved),
        summary=str(summary),
        labels=tuple(sorted(json.loads(labels).items())),
    )
