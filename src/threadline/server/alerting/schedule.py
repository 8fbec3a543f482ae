"""Run the evaluator every ``slo_evaluation_interval_s`` on a thread of its own.

The thread only reads rollups and, when an alert moves, takes one short turn on the
store's writer; ingest never waits for it. A tick that fails is logged and the next
one runs on time; ``stop`` wakes the thread at once. A store that does not offer the
SLO reads yet (``StoreUnsupported``) stops the evaluation, said once in the log.

With a ``lease`` (``server.lease``), several server processes on one database run
this schedule and only the one holding the lease evaluates: each tick first takes or
renews the lease, and a process that does not hold it skips the tick. The lease lasts
``LEASE_INTERVALS`` intervals, so a holder that stopped is replaced by another
process within ``LEASE_INTERVALS + 1`` intervals. ``stop`` lets the lease go, so
after a clean shutdown another process takes it at its next tick.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from threadline.server.alerting.evaluator import Clock, Evaluator
from threadline.server.alerting.notice import AlertNotice
from threadline.server.lease import Lease
from threadline.server.storage.base import Store, StoreUnsupported

logger = logging.getLogger(__name__)

# How long ``stop`` waits for a tick in progress before leaving the thread behind.
STOP_TIMEOUT_S = 30.0
# The evaluator's lease lasts this many intervals: a holder that misses two renewals
# in a row (a slow store, a pause) keeps it, and one that died is replaced within
# four intervals (two minutes at the default 30 s), well inside the 5-minute short
# window of the fastest page, so a failover delays a page by at most a few ticks.
LEASE_INTERVALS: Final = 3
# The name of the lease in the store (``lease.evaluator``): SLO evaluation and the
# scheduled drills run where it is held.
LEASE_NAME: Final = "evaluator"


def evaluator_lease(
    store: Store, interval_s: float, *, holder: str, clock: Clock, sole: bool = False
) -> Lease:
    """The lease the schedule of ``interval_s`` keeps; its holder counts itself as holding
    until one interval before it runs out (a margin for clocks that disagree). ``sole``:
    the store is embedded, so no other live process can hold the lease."""
    interval_ns = int(interval_s * 1e9)
    return Lease(
        store,
        LEASE_NAME,
        holder=holder,
        ttl_ns=LEASE_INTERVALS * interval_ns,
        margin_ns=interval_ns,
        sole=sole,
        clock=clock,
    )


class EvaluationSchedule:
    """Calls ``evaluator.tick`` every ``interval_s`` seconds between ``start`` and ``stop``,
    while this process holds ``lease`` (always, without one)."""

    def __init__(
        self, evaluator: Evaluator, interval_s: float, *, lease: Lease | None = None
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"slo_evaluation_interval_s must be greater than 0, got {interval_s}")
        self._evaluator = evaluator
        self._interval_s = interval_s
        self._lease = lease
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsupported = False  # the store offers no SLO reads: keep the lease only

    @property
    def lease(self) -> Lease | None:
        return self._lease

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="threadline-slo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._thread = None
        if self._lease is not None:
            self._lease.release()

    def run_once(self) -> list[AlertNotice] | None:
        """One tick: take or renew the lease, then evaluate; None (nothing evaluated) while
        another process holds the lease."""
        if self._lease is not None and not self._lease.hold():
            self._evaluator.forget()  # /metrics shows the holder's figures, not stale ones
            return None
        if self._unsupported:
            return None  # the lease is still kept: the scheduled drills run where it is
        return self._evaluator.tick()

    def _run(self) -> None:
        if self._lease is not None:
            # Taken at once, not after the first interval: the drills wait for it.
            self._lease.hold()
        while not self._stopping.wait(self._interval_s):
            try:
                self.run_once()
            except StoreUnsupported as exc:
                logger.warning("SLOs are not evaluated: %s", exc)
                self._unsupported = True
                if self._lease is None:
                    return
            except Exception:
                logger.exception(
                    "evaluating the SLOs failed; trying again in %.0f s", self._interval_s
                )
