"""The alerts' state on ClickHouse: one insert per save, the newest version read back.

``alert_states`` is a ``ReplacingMergeTree(version)`` keyed by (SLO, alert). A save
inserts, in one block, a new version of every record saved and a ``forgotten`` row
for every key deleted: the block is written whole or not at all, which is the
contract's "together (all or none)", with no transaction. Reads take the newest
version of each key (``FINAL``) and leave the forgotten out. The table holds a
handful of keys, so ``FINAL`` costs nothing worth counting.

Versions are nanosecond times, made strictly increasing within a process, so a save
replaces every earlier one; two servers saving the same alert in the same
nanosecond are not expected (the SLO evaluator takes one turn at a time).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Final

from threadline.server.alerting.state import AlertRecord, AlertState
from threadline.server.storage.clickhouse import schema
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.tables import Fetch, Row, Tables

_COLUMNS: Final = (
    "slo",
    "alert",
    "state",
    "active_since_ns",
    "updated_ns",
    "firing_since_ns",
    "resolved_ns",
    "summary",
    "labels",
)
_last_version = 0
_version_lock = threading.Lock()


def load(fetch: Fetch, t: Tables) -> list[AlertRecord]:
    rows = fetch(
        f"SELECT {', '.join(_COLUMNS)} FROM {t.alert_states} FINAL"
        " WHERE forgotten = 0 ORDER BY slo, alert",
        {},
    )
    return [_record(row) for row in rows]


def save(
    connection: Connection, records: Sequence[AlertRecord], forget: Sequence[tuple[str, str]]
) -> None:
    version = _next_version()
    rows: list[list[object]] = [
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
            0,
            version,
        ]
        for r in records
    ]
    saved = {r.key for r in records}
    rows += [
        [slo, alert, "", 0, 0, None, None, "", "{}", 1, version]
        for slo, alert in forget
        if (slo, alert) not in saved
    ]
    if rows:
        connection.insert_rows(
            schema.ALERT_STATES, [*_COLUMNS, "forgotten", "version"], rows, doing="saving alerts"
        )


def _next_version() -> int:
    global _last_version
    with _version_lock:
        _last_version = max(time.time_ns(), _last_version + 1)
        return _last_version


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
