"""The attribute keys some stored span's resource carries, so searches skip the rest.

A search by an attribute pair holds for a span when its own attributes or its resource
carry the pair, and the window read looks in each document on its own
(``summary_reads._window_traces``). Most keys searched for (a payment provider, a
route, a status code) are span attributes no resource carries, and the resource's
read then scans every span's resource in the window to find nothing: about a tenth
of such a search at 10M spans (``docs/performance.md``, "Resources read only for their
keys").

Resources hold few keys (``service.name``, ``host.name``, ...) in few distinct
documents (one per process), so the store keeps the set of their keys in memory. It
is read from the spans when the store opens (the distinct documents first, then their
keys: a scan of the resource column, once) and grows in the writer with each group of
batches, before its transaction commits, so a read that can see a span already knows
its resource's keys (and off the request's event loop, where ``write`` is called).
Keys are never removed: a key that no stored resource carries any more (after
retention or an erasure) costs a read that finds nothing, never a missing answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Fetch

# The distinct resource documents' top-level keys (a search's key is one top-level key:
# ``sql.json_pointer``).
_STORED_KEYS = (
    f"SELECT DISTINCT unnest(json_keys(resource)) FROM (SELECT DISTINCT resource FROM {TABLE})"
)


class ResourceKeys:
    """The keys some stored span's resource may carry: a superset, never fewer."""

    def __init__(self) -> None:
        # Replaced whole under the lock, read without it: a reader sees the old set or
        # the new one, either a superset of what its snapshot holds.
        self._keys: frozenset[str] = frozenset()
        self._adding = threading.Lock()

    @classmethod
    def stored(cls, fetch: Fetch) -> ResourceKeys:
        """The keys of every resource the store's spans carry."""
        keys = cls()
        keys._add(str(row[0]) for row in fetch(_STORED_KEYS, []))
        return keys

    def may_carry(self, key: str) -> bool:
        """False only when no stored span's resource carries ``key``."""
        return key in self._keys

    def add_batch(self, resources: pa.ChunkedArray) -> None:
        """Take in the keys of a batch's resource documents (JSON objects), before the
        batch commits. A batch holds a document per process that sent it: finding and
        parsing the distinct ones costs little next to the commit."""
        for document in pc.unique(resources).to_pylist():
            parsed = json.loads(document)
            if isinstance(parsed, dict):
                self._add(parsed)

    def _add(self, keys: Iterable[str]) -> None:
        new = set(keys) - self._keys
        if new:
            with self._adding:
                self._keys = self._keys | new
