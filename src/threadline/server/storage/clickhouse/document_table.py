"""The ``documents`` table of a ClickHouse store (schema version 2): the documents
people edit (sampling rules, SLOs, funnels, probes), by name.

A ``ReplacingMergeTree(version)`` keyed by name: a save inserts a new version of the
row, merges keep the newest, and reads take it with ``FINAL`` (a handful of rows, so
``FINAL`` costs nothing worth counting). ``documents.py`` reads and saves it. Kept
apart from ``schema.py`` so the table has one home; ``schema.statements`` lists it.
"""

from __future__ import annotations

from typing import Final

DOCUMENTS: Final = "documents"
# Every version of a document on one shard, so FINAL finds the newest.
SHARDING_KEY: Final = "cityHash64(name)"


def create_statement(db: str, settings: str) -> str:
    """The DDL of the table in ``db`` (already quoted), with the table ``settings``."""
    return f"""CREATE TABLE IF NOT EXISTS {db}.{DOCUMENTS} (
    name String,
    body String CODEC(ZSTD(1)),
    etag String,
    saved_ns Int64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name
SETTINGS {settings}"""
