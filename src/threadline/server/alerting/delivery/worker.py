"""One receiver's sender: a bounded queue and a thread of its own.

Each receiver gets its own worker, so a slow or unreachable receiver delays only its
own alerts: the pager's webhook is not stuck behind a Slack outage. Within a worker,
alerts go out in the order they were offered (a resolve never overtakes its firing)
and each body is retried by ``RetryPolicy`` until it is sent or abandoned.

``offer`` never blocks: when the queue is full the notices are dropped and counted,
because a notifier that can block the evaluator is a bug (the evaluator's next tick
sends the alerts' current state anyway). What happened is kept per receiver (sent,
retried, abandoned, dropped, the last error and when) for ``/api/alerts`` and
``threadline doctor``, and logged: a retry as a warning, an abandoned send as an error.

An Alertmanager receiver (``resend_s`` > 0) keeps the alerts that are firing and
posts them again every ``resend_s`` until they resolve.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from threadline.server.alerting.delivery.receivers import Receiver
from threadline.server.alerting.delivery.retry import RetryPolicy, retry_after_s, retryable
from threadline.server.alerting.notice import AlertNotice, AlertStatus

logger = logging.getLogger(__name__)

# Alerts waiting per receiver. An evaluation tick produces a handful; a thousand is
# many minutes of a receiver being down with every SLO alerting at once.
QUEUE_SIZE: Final = 1000
# How often an idle worker looks at its stop flag and its re-send clock.
IDLE_POLL_S: Final = 0.25
# Longest error text kept (receivers may answer with a whole HTML page).
MAX_ERROR_CHARS: Final = 300
USER_AGENT: Final = "Threadline-Alerting/1"


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    """What one receiver's deliveries came to since the server started.

    ``sent``: bodies the receiver accepted; ``retries``: failed attempts tried again;
    ``failed``: bodies abandoned (deadline passed, or refused with a final 4xx);
    ``dropped``: alerts never tried because the queue was full; times in Unix ns.
    """

    name: str
    kind: str
    url: str
    queued: int
    sent: int
    retries: int
    failed: int
    dropped: int
    firing: int
    last_error: str
    last_error_ns: int | None
    last_success_ns: int | None

    @property
    def healthy(self) -> bool:
        """No failure since the last success (or no failure at all)."""
        if self.last_error_ns is None:
            return self.dropped == 0
        return self.last_success_ns is not None and self.last_success_ns > self.last_error_ns


class ReceiverWorker:
    """Sends the notices offered to it to one receiver, on its own thread."""

    def __init__(
        self,
        receiver: Receiver,
        policy: RetryPolicy,
        *,
        queue_size: int = QUEUE_SIZE,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.receiver = receiver
        self._policy = policy
        self._clock_ns = clock_ns
        self._rng = rng or random.Random()
        self._queue: queue.Queue[tuple[AlertNotice, ...]] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards the counters below
        self._sent = self._retries = self._failed = self._dropped = 0
        self._last_error = ""
        self._last_error_ns: int | None = None
        self._last_success_ns: int | None = None
        self._firing: dict[str, AlertNotice] = {}  # worker thread only
        self._firing_count = 0
        self._next_resend = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"threadline-alerts-{receiver.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop after the send in progress (a retry wait ends at once); idempotent."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def offer(self, notices: Sequence[AlertNotice]) -> bool:
        """Queue ``notices`` for sending; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(tuple(notices))
        except queue.Full:
            with self._lock:
                self._dropped += len(notices)
            logger.error(
                "alert receiver %s: %d alert(s) dropped, %d are already waiting",
                self.receiver.name,
                len(notices),
                self._queue.qsize(),
            )
            return False
        return True

    def status(self) -> ReceiverStatus:
        with self._lock:
            return ReceiverStatus(
                name=self.receiver.name,
                kind=self.receiver.kind.value,
                url=self.receiver.display_url,
                queued=self._queue.qsize(),
                sent=self._sent,
                retries=self._retries,
                failed=self._failed,
                dropped=self._dropped,
                firing=self._firing_count,
                last_error=self._last_error,
                last_error_ns=self._last_error_ns,
                last_success_ns=self._last_success_ns,
            )

    def _run(self) -> None:
        with httpx.Client(timeout=self._policy.timeout_s, headers={"User-Agent": USER_AGENT}) as c:
            while not self._stopping.is_set():
                try:
                    item = self._queue.get(timeout=IDLE_POLL_S)
                except queue.Empty:
                    self._maybe_resend(c)
                    continue
                self._remember(item)
                self._send(c, item)
                self._maybe_resend(c)

    def _remember(self, notices: tuple[AlertNotice, ...]) -> None:
        if self.receiver.resend_s <= 0:
            return
        for notice in notices:
            if notice.status is AlertStatus.FIRING:
                self._firing[notice.fingerprint] = notice
            else:
                self._firing.pop(notice.fingerprint, None)
        with self._lock:
            self._firing_count = len(self._firing)
        self._next_resend = time.monotonic() + self.receiver.resend_s

    def _maybe_resend(self, client: httpx.Client) -> None:
        if self.receiver.resend_s <= 0 or not self._firing:
            return
        if time.monotonic() < self._next_resend:
            return
        self._next_resend = time.monotonic() + self.receiver.resend_s
        self._send(client, tuple(self._firing.values()))

    def _send(self, client: httpx.Client, notices: tuple[AlertNotice, ...]) -> None:
        try:
            bodies = self.receiver.render(notices, self._clock_ns())
        except Exception as exc:  # a rendering bug must not kill the worker
            logger.exception("alert receiver %s: rendering the alerts failed", self.receiver.name)
            self._record_failure(f"rendering failed: {exc}", final=True)
            return
        for body in bodies:
            self._deliver(client, json.dumps(body).encode())

    def _deliver(self, client: httpx.Client, content: bytes) -> None:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error, again, wait_hint = self._attempt(client, content)
            if error is None:
                with self._lock:
                    self._sent += 1
                    self._last_success_ns = self._clock_ns()
                return
            delay = self._policy.delay_s(attempt, self._rng, wait_hint)
            late = time.monotonic() + delay - started > self._policy.deadline_s
            if not again or late or self._stopping.is_set():
                reason = "refused" if not again else "gave up"
                self._record_failure(f"{error} ({reason} after {attempt} attempt(s))", final=True)
                return
            self._record_failure(error, final=False)
            logger.warning(
                "alert receiver %s (%s): %s; retrying in %.1f s",
                self.receiver.name,
                self.receiver.display_url,
                error,
                delay,
            )
            if self._stopping.wait(delay):
                self._record_failure(f"{error} (server stopping)", final=True)
                return

    def _attempt(
        self, client: httpx.Client, content: bytes
    ) -> tuple[str | None, bool, float | None]:
        """(error or None, whether to retry, the receiver's Retry-After)."""
        try:
            response = client.post(
                self.receiver.url, content=content, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], True, None
        if response.is_success:
            return None, False, None
        text = response.text.strip().replace("\n", " ")
        error = f"HTTP {response.status_code}: {text}"[:MAX_ERROR_CHARS]
        return (
            error,
            retryable(response.status_code),
            retry_after_s(response.headers.get("Retry-After")),
        )

    def _record_failure(self, error: str, *, final: bool) -> None:
        with self._lock:
            if final:
                self._failed += 1
            else:
                self._retries += 1
            self._last_error = error
            self._last_error_ns = self._clock_ns()
        if final:
            logger.error(
                "alert receiver %s (%s): %s",
                self.receiver.name,
                self.receiver.display_url,
                error,
            )
