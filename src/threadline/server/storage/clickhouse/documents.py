"""The kept documents (sampling rules, SLOs, funnels, probes) on ClickHouse.

A save reads the newest version of the row (``FINAL``), compares its ETag with
``if_match`` and inserts the next version; the check and the insert are serialised
in this process. ClickHouse has no transactions, so two *processes* saving the same
document in the same instant can both pass the check: the insert with the higher
version then wins and the other edit is lost without a 412. The versions are the
saving clock's nanoseconds, and never below the stored version + 1, so a save
always supersedes the version it checked whatever the clocks say. Editors are
people, seconds apart, so the window (one read and one insert, milliseconds) is
named in docs/scale.md rather than closed with a coordination service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from threadline.etags import body_etag
from threadline.server.storage.base import NO_DOCUMENT, StaleDocument, StoredDocument
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.document_table import DOCUMENTS
from threadline.server.storage.clickhouse.tables import Fetch, Row, Tables

_save_lock = threading.Lock()


def load(fetch: Fetch, t: Tables, name: str) -> StoredDocument | None:
    row = _newest(fetch, t, name)
    return None if row is None else StoredDocument(row[0], row[1])


def save(connection: Connection, t: Tables, name: str, body: str, if_match: str | None) -> str:
    """Insert ``body`` as ``name``'s next version if ``if_match`` names the stored one."""

    def fetch(sql: str, params: Mapping[str, object]) -> list[Row]:
        return connection.rows(sql, params, doing=f"reading {name}")

    etag = body_etag(body)
    with _save_lock:
        stored = _newest(fetch, t, name)
        if if_match is not None and (NO_DOCUMENT if stored is None else stored[1]) != if_match:
            raise StaleDocument(f"{name} changed since it was read")
        version = max(time.time_ns(), (0 if stored is None else stored[2]) + 1)
        connection.insert_rows(
            DOCUMENTS,
            ["name", "body", "etag", "saved_ns", "version"],
            [[name, body, etag, time.time_ns(), version]],
            doing=f"saving {name}",
        )
    return etag


def _newest(fetch: Fetch, t: Tables, name: str) -> tuple[str, str, int] | None:
    rows = fetch(
        f"SELECT body, etag, version FROM {t.documents} FINAL WHERE name = {{name:String}}",
        {"name": name},
    )
    return (str(rows[0][0]), str(rows[0][1]), int(rows[0][2])) if rows else None
