"""The qualified names of one store's tables, and the read function queries are given."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from threadline.server.storage.clickhouse import schema

Row = tuple[Any, ...]
# Runs one read statement with its named parameters and returns every row.
Fetch = Callable[[str, Mapping[str, object]], list[Row]]


@dataclass(frozen=True, slots=True)
class Tables:
    spans: str
    incoming: str
    trace_ts: str
    logs: str
    alert_states: str
    versions: str

    @staticmethod
    def of(database: str) -> Tables:
        db = schema.quote(database)
        return Tables(
            spans=f"{db}.{schema.SPANS}",
            incoming=f"{db}.{schema.SPANS_INCOMING}",
            trace_ts=f"{db}.{schema.TRACE_ID_TS}",
            logs=f"{db}.{schema.LOGS}",
            alert_states=f"{db}.{schema.ALERT_STATES}",
            versions=f"{db}.{schema.VERSION_TABLE}",
        )
