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

A sender can also flood its resources with keys of their own (a request id in the
key's name). Past ``MAX_KEYS`` keys the set stops growing: every key may then be on a
resource, as before the set existed, and the table records that with one row whose
key is NULL, instead of a row per key. Batches are then no longer parsed for keys.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from threadline.server.storage.duckdb.schema import RESOURCE_KEYS, TABLE
from threadline.server.storage.duckdb.sql import Fetch

# The distinct resource documents' top-level keys (a search's key is one top-level key:
# ``sql.json_pointer``): what version 24 fills the table with, once.
_SPANS_KEYS = (
    f"SELECT DISTINCT unnest(json_keys(resource)) FROM (SELECT DISTINCT resource FROM {TABLE})"
)


# Keys known at most, far more than OpenTelemetry's resources carry (tens of keys a
# process, mostly shared): past it, every key may be on a resource (the row recording
# that has a NULL key).
MAX_KEYS: Final = 10_000
# A recorded key: a resource's key, or ``None``, for "any key" past ``MAX_KEYS``.
Key = str | None


def fill(fetch: Fetch) -> None:
    """Record the keys of every resource the stored spans carry (schema version 24)."""
    keys: list[Key] = [str(row[0]) for row in fetch(_SPANS_KEYS, [])]
    _insert(fetch, keys if len(keys) <= MAX_KEYS else [None])


def _insert(fetch: Fetch, keys: Iterable[Key]) -> None:
    ordered = sorted(keys, key=lambda key: (key is None, key or ""))
    if ordered:
        fetch(f"INSERT INTO {RESOURCE_KEYS} SELECT unnest(?::VARCHAR[])", [ordered])


class ResourceKeys:
    """The keys some stored span's resource may carry: a superset, never fewer."""

    def __init__(self, recorded: Iterable[Key] = ()) -> None:
        keys = set(recorded)
        # Replaced whole under the lock, read without it: a reader sees the old set or
        # the new one, either a superset of what its snapshot holds. ``_any``: past
        # ``MAX_KEYS``, any key may be carried; it never turns back, and the set is
        # left as it was, so a reader that saw ``_any`` unset still finds its keys.
        self._any = None in keys or len(keys) > MAX_KEYS
        self._keys = frozenset(key for key in keys if key is not None)
        self._adding = threading.Lock()
        # What ``resource_keys`` holds, as far as committed transactions say: used by
        # the writer's thread alone, after the open.
        self._recorded: set[Key] = keys

    @classmethod
    def stored(cls, fetch: Fetch) -> ResourceKeys:
        """The keys recorded in the store (``resource_keys``)."""
        return cls(row[0] for row in fetch(f"SELECT DISTINCT key FROM {RESOURCE_KEYS}", []))

    def may_carry(self, key: str) -> bool:
        """False only when no stored span's resource carries ``key``."""
        return self._any or key in self._keys

    def take_in(self, resources: pa.ChunkedArray) -> frozenset[Key]:
        """Take in the keys of a batch's resource documents (JSON objects) before the
        batch commits, and return those not yet recorded, for ``record`` in its
        transaction. A batch holds a document per process that sent it: finding and
        parsing the distinct ones costs little next to the commit."""
        if self._any:
            return frozenset({None} - self._recorded)
        keys: set[str] = set()
        for document in pc.unique(resources).to_pylist():
            parsed = json.loads(document)
            if isinstance(parsed, dict):
                keys.update(parsed)
        new = keys - self._keys
        if len(self._keys) + len(new) > MAX_KEYS:
            self._any = True
            return frozenset({None} - self._recorded)
        if new:
            with self._adding:
                self._keys = self._keys | new
        return frozenset(keys - self._recorded)

    def record(self, fetch: Fetch, keys: frozenset[Key]) -> None:
        """Record ``keys`` (from ``take_in``) in the batch's transaction; ``committed``
        once it commits. A transaction that fails records nothing, and the next batch
        carrying the keys records them again."""
        _insert(fetch, keys)

    def committed(self, keys: frozenset[Key]) -> None:
        """The transaction that recorded ``keys`` committed."""
        self._recorded |= keys
