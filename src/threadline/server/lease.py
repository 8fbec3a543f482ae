"""One server process at a time: a lease kept in the store, for work that must not run twice.

Several ``threadline serve`` processes may share one ClickHouse database. Each would
evaluate the SLOs and run the scheduled drills, so one incident would page once per
process and each drill would run once per process. The process holding the lease
does that work; the others serve requests only, and one of them takes the lease
over when its holder stops renewing it (it died, or lost the store).

The lease is a kept document (``Store.document`` / ``Store.save_document``) named
``lease.<name>``, its body ``{"holder", "since_ns", "expires_ns"}``. ``hold`` reads
it and, when this process holds it or it has expired, saves a later expiry with the
store's compare-and-set (``if_match``: the ETag just read), then reads it back: the
process holds the lease when the stored holder is itself. Taking a lease over and
renewing it are both that one check-and-write.

What that guarantees:

- **DuckDB**: one process per file, and the check and the write are one transaction
  on the writer: never two holders.
- **ClickHouse** has no transactions: two processes taking an expired lease in the
  same instant (a read and an insert, milliseconds) can both pass the check. The
  insert with the higher version wins (``ReplacingMergeTree`` read with ``FINAL``); a
  process that read its own row back before the other's insert landed believes it
  holds the lease until its next ``hold``, which reads the other holder and stands
  down. Two holders overlap for at most one tick, and only when the lease changes
  hands (a holder renewing its unexpired lease is never contested).

On an embedded store (a DuckDB file, a chDB directory) one process opens the store,
so a holder other than this process is a predecessor that stopped without letting
the lease go (killed, crashed): a ``sole`` lease takes it over at once rather than
leaving the alerts unevaluated until it runs out.

Expiries are wall-clock nanoseconds of the writer's clock, compared with the
reader's: clocks that disagree by less than ``margin_ns`` never make two holders,
since a holder counts itself as holding (``held``) only until ``margin_ns`` before
the expiry it wrote.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from threadline.server.storage.base import (
    NO_DOCUMENT,
    StaleDocument,
    Store,
    StoredDocument,
    StoreError,
)

logger = logging.getLogger(__name__)

# Kept documents whose name starts so are leases, never documents people edit.
PREFIX: Final = "lease."


@dataclass(frozen=True, slots=True)
class LeaseState:
    """Who holds a lease (as the store says), since when and until when."""

    holder: str
    since_ns: int
    expires_ns: int

    def expired(self, now_ns: int) -> bool:
        return self.expires_ns <= now_ns

    def encode(self) -> str:
        return json.dumps(
            {"holder": self.holder, "since_ns": self.since_ns, "expires_ns": self.expires_ns},
            sort_keys=True,
        )

    @staticmethod
    def decode(body: str) -> LeaseState | None:
        """The state in ``body``, or None when it is not a lease (then it counts as free)."""
        try:
            data = json.loads(body)
            return LeaseState(str(data["holder"]), int(data["since_ns"]), int(data["expires_ns"]))
        except (ValueError, TypeError, KeyError):
            return None


def new_holder_id() -> str:
    """``hostname:pid:random``: says which process holds a lease; the random part tells a
    restarted process (same pid in a new container) from its predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """The lease ``name`` on ``store``, taken and renewed by ``hold`` for ``ttl_ns``;
    ``sole`` when this process is the only one that can open the store (see the module)."""

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        holder: str,
        ttl_ns: int,
        margin_ns: int = 0,
        sole: bool = False,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not 0 <= margin_ns < ttl_ns:
            raise ValueError(f"a lease's margin must be within its time, got {margin_ns}")
        self._store = store
        self._document = PREFIX + name
        self._holder = holder
        self._ttl_ns = ttl_ns
        self._margin_ns = margin_ns
        self._sole = sole  # no other live process can open the store
        self._clock = clock
        self._lock = threading.Lock()  # one hold or release at a time
        self._until_ns = 0  # held (by this process's reckoning) until then

    @property
    def holder(self) -> str:
        """This process's holder id."""
        return self._holder

    def held(self) -> bool:
        """Whether this process held the lease at its last ``hold`` and it has not run out
        since (no store read: cheap enough to ask on every tick of a timetable)."""
        return self._clock() < self._until_ns

    def hold(self) -> bool:
        """Take the lease if it is free or expired, renew it if this process holds it;
        whether this process holds it now. A store that fails leaves the lease as it was
        held, until it runs out (logged)."""
        with self._lock:
            now = self._clock()
            try:
                taken = self._take(now)
            except StaleDocument:
                taken = False  # another process wrote it between the read and the save
            except StoreError as exc:
                logger.warning("the lease %s could not be renewed: %s", self._document, exc)
                return now < self._until_ns
            self._until_ns = now + self._ttl_ns - self._margin_ns if taken else 0
            return taken

    def state(self) -> LeaseState | None:
        """The lease as the store holds it now (None: never taken)."""
        stored = self._store.document(self._document)
        return None if stored is None else LeaseState.decode(stored.body)

    def release(self) -> None:
        """Let the lease go at once (when the process stops), so another process takes it
        at its next ``hold`` rather than after the lease runs out."""
        with self._lock:
            if self._until_ns == 0:
                return
            self._until_ns = 0
            try:
                stored = self._store.document(self._document)
                current = None if stored is None else LeaseState.decode(stored.body)
                if stored is None or current is None or current.holder != self._holder:
                    return
                now = self._clock()
                ended = LeaseState(self._holder, current.since_ns, now)
                self._store.save_document(self._document, ended.encode(), if_match=stored.etag)
            except StoreError as exc:  # StaleDocument included: someone else holds it now
                logger.info("the lease %s was not released: %s", self._document, exc)

    def _take(self, now: int) -> bool:
        stored = self._store.document(self._document)
        current = None if stored is None else LeaseState.decode(stored.body)
        mine = current is not None and current.holder == self._holder
        if current is not None and not mine and not current.expired(now) and not self._sole:
            return False
        since = current.since_ns if current is not None and mine else now
        taken = LeaseState(self._holder, since, now + self._ttl_ns)
        self._store.save_document(self._document, taken.encode(), if_match=_etag(stored))
        back = self._store.document(self._document)  # on ClickHouse, the highest version won
        found = None if back is None else LeaseState.decode(back.body)
        return found is not None and found.holder == self._holder


def _etag(stored: StoredDocument | None) -> str:
    return NO_DOCUMENT if stored is None else stored.etag
