"""The kept documents (sampling rules, SLOs, funnels, probes) in the store file.

One row per name. A save reads the stored ETag, compares it with ``if_match`` and
replaces the row in one transaction on the writer, the only connection that writes:
no other save can come between the check and the write.
"""

from __future__ import annotations

import time

from threadline.etags import body_etag
from threadline.server.storage.base import NO_DOCUMENT, StoredDocument
from threadline.server.storage.duckdb.schema import DOCUMENTS
from threadline.server.storage.duckdb.sql import Fetch

# What ``save`` returns when ``if_match`` named another version and nothing was saved
# (a writer task returns a count; an exception would lose its type on the way out).
STALE = 0
SAVED = 1


def load(fetch: Fetch, name: str) -> StoredDocument | None:
    rows = fetch(f"SELECT body, etag FROM {DOCUMENTS} WHERE name = ?", [name])
    return StoredDocument(str(rows[0][0]), str(rows[0][1])) if rows else None


def save(run: Fetch, name: str, body: str, if_match: str | None) -> int:
    """Replace ``name``'s row with ``body`` (in the caller's transaction) if ``if_match``
    names the stored version; ``STALE``, and nothing written, if not."""
    if if_match is not None:
        rows = run(f"SELECT etag FROM {DOCUMENTS} WHERE name = ?", [name])
        stored = str(rows[0][0]) if rows else NO_DOCUMENT
        if stored != if_match:
            return STALE
    run(f"DELETE FROM {DOCUMENTS} WHERE name = ?", [name])
    run(
        f"INSERT INTO {DOCUMENTS} (name, body, etag, saved_ns) VALUES (?, ?, ?, ?)",
        [name, body, body_etag(body), time.time_ns()],
    )
    return SAVED
