"""Run each scheduled probe on its interval, on a few threads of its own.

One thread keeps the timetable: every ``TICK_S`` it reads the probes in force and
starts each one that is due on a worker, at most ``workers`` at once. A probe never
overlaps itself: it is next due ``interval`` after its run *started*, and a run that
takes longer delays the next one instead of piling up. A new or changed probe is due
at once. Runs read their traces from the store (``traces``) and take one short turn
on its writer to save the result; ingest never waits for them.

With several server processes on one database, only the one holding the evaluator's
lease runs the probes (``may_run``, asked every tick without a store read): the
others keep no timetable of their own, and one that takes the lease over starts
every probe at once, as a server that just started does.

``stop`` wakes everything: a run waiting for traces ends at its next poll and is not
recorded; a request in flight ends within its own timeout (``probing.runner``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from threadline.probing.definitions import ProbeDocument, ScheduledProbe
from threadline.probing.runner import (
    ProbeRun,
    new_journey_id,
    send_step,
    wait_for_traces,
)
from threadline.probing.verdict import judge
from threadline.server.drills.record import DrillResult, of_run
from threadline.server.drills.traces import DrillStopped, store_fetcher
from threadline.server.storage.base import Store, StoreError

logger = logging.getLogger(__name__)

# How often the timetable is looked at: the finest interval a probe may have is 1 s.
TICK_S: Final = 0.25
# How often a run asks the store for its traces: the SDK exports every second by
# default, and each ask is a store read taken from ingest's machine (bench/drills.py).
POLL_S: Final = 0.5
# How long ``stop`` waits for the runs in progress (a step's request may take 10 s).
STOP_TIMEOUT_S: Final = 15.0

OnResult = Callable[[ScheduledProbe, DrillResult], object]
OnDocument = Callable[[ProbeDocument], None]
TraceUrl = Callable[[str], str]


class DrillScheduler:
    """Runs the probes ``probes`` returns; ``on_result`` hears of every stored result."""

    def __init__(
        self,
        store: Store,
        probes: Callable[[], ProbeDocument],
        *,
        trace_url: TraceUrl,
        on_result: OnResult = lambda probe, result: None,
        on_document: OnDocument = lambda document: None,
        workers: int = 2,
        keep: int = 500,
        clock: Callable[[], int] = time.time_ns,
        may_run: Callable[[], bool] = lambda: True,
    ) -> None:
        if workers < 1:
            raise ValueError(f"drill_concurrency must be at least 1, got {workers}")
        if keep < 1:
            raise ValueError(f"drill_history must be at least 1, got {keep}")
        self._store = store
        self._probes = probes
        self._trace_url = trace_url
        self._on_result = on_result
        # Told of each document in force once (at start, then after each change).
        self._on_document = on_document
        self._seen_document: ProbeDocument | None = None
        self._workers = workers
        self._keep = keep
        self._clock = clock
        self._may_run = may_run
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards _running and _due
        self._running: set[str] = set()
        # Per probe: the definition last scheduled and when it is next due (monotonic).
        self._due: dict[str, tuple[ScheduledProbe, float]] = {}
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        with self._lock:
            # Runs cancelled by the last ``stop`` never released their probe.
            self._running.clear()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="threadline-drill")
        self._thread = threading.Thread(target=self._loop, name="threadline-drills", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._thread = None
        if self._pool is not None:
            # Runs notice ``_stopping`` at their next poll; a request in flight ends
            # within its timeout, on a daemon thread the process does not wait for.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def running(self) -> frozenset[str]:
        """Names of the probes running now."""
        with self._lock:
            return frozenset(self._running)

    def due_now(self) -> list[ScheduledProbe]:
        """The probes to start now (and mark running); the timetable moves on."""
        now = time.monotonic()
        document = self._probes()
        if document is not self._seen_document:
            self._seen_document = document
            try:
                self._on_document(document)
            except Exception:
                logger.exception("handling the new probe document failed")
        starting: list[ScheduledProbe] = []
        with self._lock:
            names = {probe.name for probe in document.probes}
            for gone in set(self._due) - names:
                del self._due[gone]
            for probe in document.probes:
                known = self._due.get(probe.name)
                due = now if known is None or known[0] != probe else known[1]
                self._due[probe.name] = (probe, due)
            # Longest overdue first, so a short interval cannot starve the others.
            for probe, due in sorted(self._due.values(), key=lambda item: item[1]):
                if due > now or probe.name in self._running:
                    continue
                if len(self._running) >= self._workers:
                    break  # the rest wait for a free worker, still due
                self._running.add(probe.name)
                self._due[probe.name] = (probe, now + probe.interval_ns / 1e9)
                starting.append(probe)
        return starting

    def run_once(self, probe: ScheduledProbe) -> DrillResult | None:
        """Run ``probe`` now on this thread, store and announce its result; None when
        the server stopped meanwhile or the store failed (logged)."""
        started_ns = self._clock()
        began = time.monotonic()
        journey = new_journey_id()
        try:
            outcomes = tuple(send_step(step, journey) for step in probe.plan.steps)
            traces = wait_for_traces(
                [outcome.trace_id for outcome in outcomes],
                store_fetcher(self._store, self._stopping),
                wait_s=probe.wait_ns / 1e9,
                sleep=self._pause,
            )
        except DrillStopped:
            return None
        except StoreError:
            logger.exception("drill %s could not read its traces; not recorded", probe.name)
            return None
        run = ProbeRun(journey, judge(probe.plan, outcomes, traces), outcomes, traces)
        result = of_run(
            probe.name,
            run,
            started_ns=started_ns,
            duration_ns=int((time.monotonic() - began) * 1e9),
            trace_url=self._trace_url,
        )
        try:
            self._store.save_drill_result(result, keep=self._keep)
        except StoreError:
            logger.exception("saving the result of drill %s failed", probe.name)
            return None
        if not result.passed:
            logger.warning("drill %s failed: %s", probe.name, result.summary)
        try:
            self._on_result(probe, result)
        except Exception:
            logger.exception("handling the result of drill %s failed", probe.name)
        return result

    def _pause(self, _: float) -> None:
        """The runner's wait between polls; ends at once when the server stops."""
        self._stopping.wait(POLL_S)

    def _loop(self) -> None:
        while not self._stopping.wait(TICK_S):
            if not self._may_run():
                with self._lock:
                    self._due.clear()  # another process runs the probes meanwhile
                self._seen_document = None  # and sweeps their alerts
                continue
            try:
                starting = self.due_now()
            except Exception:
                logger.exception("reading the scheduled probes failed")
                continue
            for probe in starting:
                pool = self._pool
                if pool is None:
                    return
                pool.submit(self._run_and_release, probe)

    def _run_and_release(self, probe: ScheduledProbe) -> None:
        try:
            self.run_once(probe)
        except Exception:
            logger.exception("drill %s failed to run", probe.name)
        finally:
            with self._lock:
                self._running.discard(probe.name)
