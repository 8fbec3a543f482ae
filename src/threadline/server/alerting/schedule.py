"""Run the evaluator every ``slo_evaluation_interval_s`` on a thread of its own.

The thread only reads rollups and, when an alert moves, takes one short turn on the
store's writer; ingest never waits for it. A tick that fails is logged and the next
one runs on time; ``stop`` wakes the thread at once. A store that does not offer the
SLO reads yet (``StoreUnsupported``) stops the schedule, said once in the log.
"""

from __future__ import annotations

import logging
import threading

from threadline.server.alerting.evaluator import Evaluator
from threadline.server.storage.base import StoreUnsupported

logger = logging.getLogger(__name__)

# How long ``stop`` waits for a tick in progress before leaving the thread behind.
STOP_TIMEOUT_S = 30.0


class EvaluationSchedule:
    """Calls ``evaluator.tick`` every ``interval_s`` seconds between ``start`` and ``stop``."""

    def __init__(self, evaluator: Evaluator, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"slo_evaluation_interval_s must be greater than 0, got {interval_s}")
        self._evaluator = evaluator
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self._evaluator.tick()
            except StoreUnsupported as exc:
                logger.warning("SLOs are not evaluated: %s", exc)
                return
            except Exception:
                logger.exception(
                    "evaluating the SLOs failed; trying again in %.0f s", self._interval_s
                )
