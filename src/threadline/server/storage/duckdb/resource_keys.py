"""The attribute keys some stored span's resource carries, so searches skip the rest.

A search by an attribute pair holds for a span when its own attributes or its resource
carry the pair, and the window read looks in each document on its own
(``summary_reads._window_traces``). Most keys searched for (a payment provider, a
route, a status code) are span attributes no resource carries, and the resource's
read then scans every span's resource in the window to find nothing: about a tenth
of such a search at 10M spans (``docs/performance.md``, "Resources read only for their
keys").

Resources hold few keys (``service.name``, ``host.name``, ...), so the store keeps the
set of their keys in memory, and in the table ``resource_keys`` (schema version 24) so
that opening a store reads a few rows, not the spans: the distinct resource documents
are one per process as OpenTelemetry makes them, but a sender that puts per-request
values into its resource makes them as many as its spans, and a scan for them at
every open grows with the store. The writer takes in each group's keys before its
transaction (a read that can see a span already knows its resource's keys, and off
the request's event loop, where ``write`` is called) and records the ones not yet in
the table within that transaction, so the table and the spans commit together.
Keys are never removed: a key that no stored resource carries any more (after
retention or an erasure) costs a read that finds nothing, never a missing answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from threadline.server.storage.duckdb.schema import RESOURCE_KEYS, TABLE
from threadline.server.storage.duckdb.sql import Fetch

# The distinct resource documents' top-level keys (a search's key is one top-level key:
# ``sql.json_pointer``): what version 24 fills the table with, once.
_SPANS_KEYS = (
    f"SELECT DISTINCT unnest(json_keys(resource)) FROM (SELECT DISTINCT resource FROM {TABLE})"
)


def fill(fetch: Fetch) -> None:
    """Record the keys of every resource the stored spans carry (schema version 24)."""
    fetch(f"INSERT INTO {RESOURCE_KEYS} {_SPANS_KEYS}", [])


class ResourceKeys:
    """The keys some stored span's resource may carry: a superset, never fewer."""

    def __init__(self, recorded: Iterable[str] = ()) -> None:
        # Replaced whole under the lock, read without it: a reader sees the old set or
        # the new one, either a superset of what its snapshot holds.
        self._keys: frozenset[str] = frozenset(recorded)
        self._adding = threading.Lock()
        # The keys ``resource_keys`` holds, as far as committed transactions say: used
        # by the writer's thread alone, after the open.
        self._recorded: set[str] = set(self._keys)

    @classmethod
    def stored(cls, fetch: Fetch) -> ResourceKeys:
        """The keys recorded in the store (``resource_keys``)."""
        return cls(str(row[0]) for row in fetch(f"SELECT DISTINCT key FROM {RESOURCE_KEYS}", []))

    def may_carry(self, key: str) -> bool:
        """False only when no stored span's resource carries ``key``."""
        return key in self._keys

    def take_in(self, resources: pa.ChunkedArray) -> frozenset[str]:
        """Take in the keys of a batch's resource documents (JSON objects) before the
        batch commits, and return those not yet recorded, for ``record`` in its
        transaction. A batch holds a document per process that sent it: finding and
        parsing the distinct ones costs little next to the commit."""
        keys: set[str] = set()
        for document in pc.unique(resources).to_pylist():
            parsed = json.loads(document)
            if isinstance(parsed, dict):
                keys.update(parsed)
        new = keys - self._keys
        if new:
            with self._adding:
                self._keys = self._keys | new
        return frozenset(keys - self._recorded)

    def record(self, fetch: Fetch, keys: frozenset[str]) -> None:
        """Record ``keys`` (from ``take_in``) in the batch's transaction; ``committed``
        once it commits. A transaction that fails records nothing, and the next batch
        carrying the keys records them again."""
        if keys:
            fetch(f"INSERT INTO {RESOURCE_KEYS} SELECT unnest(?::VARCHAR[])", [sorted(keys)])

    def committed(self, keys: frozenset[str]) -> None:
        """The transaction that recorded ``keys`` committed."""
        self._recorded |= keys
