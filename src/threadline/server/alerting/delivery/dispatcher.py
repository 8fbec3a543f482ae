"""``Dispatcher``: hands each alert to every receiver without ever blocking the caller.

The evaluator calls ``notify`` with the notices of a tick; each receiver's worker
(``worker.py``) takes them from its own bounded queue on its own thread and sends
them with retries. ``status`` is what ``GET /api/alerts`` and ``threadline doctor``
show about deliveries: per receiver, what was sent, retried, abandoned and dropped,
and the last error.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.alerting.delivery import receivers as receivers_module
from threadline.server.alerting.delivery.receivers import Receiver
from threadline.server.alerting.delivery.retry import RetryPolicy
from threadline.server.alerting.delivery.worker import QUEUE_SIZE, ReceiverStatus, ReceiverWorker
from threadline.server.alerting.notice import AlertNotice
from threadline.settings import ServerSettings

# How long stopping waits for each worker's send in progress.
STOP_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """Every receiver's status; ``healthy`` when none has failed since its last success."""

    receivers: tuple[ReceiverStatus, ...]

    @property
    def healthy(self) -> bool:
        return all(r.healthy for r in self.receivers)

    def to_json(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "receivers": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "url": r.url,
                    "healthy": r.healthy,
                    "queued": r.queued,
                    "sent": r.sent,
                    "retries": r.retries,
                    "failed": r.failed,
                    "dropped": r.dropped,
                    "firing": r.firing,
                    "last_error": r.last_error,
                    "last_error_ns": r.last_error_ns,
                    "last_success_ns": r.last_success_ns,
                }
                for r in self.receivers
            ],
        }


class Dispatcher:
    """Fans alerts out to receivers; ``start`` and ``stop`` with the server."""

    def __init__(
        self,
        receivers: Sequence[Receiver],
        *,
        policy: RetryPolicy | None = None,
        queue_size: int = QUEUE_SIZE,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        policy = policy or RetryPolicy()
        self._workers = tuple(
            ReceiverWorker(r, policy, queue_size=queue_size, clock_ns=clock_ns, rng=rng)
            for r in receivers
        )
        self._started = False
        self._lock = threading.Lock()  # orders concurrent starts

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Dispatcher:
        """The receivers the settings name; ``ConfigError`` naming a bad URL setting."""
        return cls(receivers_module.from_settings(settings))

    @property
    def receivers(self) -> tuple[Receiver, ...]:
        return tuple(w.receiver for w in self._workers)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop(STOP_TIMEOUT_S)

    def notify(self, notices: Sequence[AlertNotice]) -> None:
        """Queue ``notices`` for every receiver and return at once (never blocks).

        Starts the workers if the server's startup has not (an app served without
        its lifespan events).
        """
        if not notices:
            return
        self.start()
        for worker in self._workers:
            worker.offer(notices)

    def status(self) -> DeliveryStatus:
        return DeliveryStatus(tuple(w.status() for w in self._workers))
