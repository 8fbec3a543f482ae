"""Send one encoded batch: attempts, backoff waits and one deadline, then count the result.

Runs on the worker thread only. Every wait is interruptible (``interrupt``), and the
deadline is the earlier of the batch's own (``RetryPolicy.deadline_s``) and the
shutdown deadline, so a process that is stopping never waits longer than it was told.
Failures are logged as rate-limited warnings: an endpoint that is down for an hour
costs a few log lines, not one per attempt.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from threadline.sdk.export.retry import Outcome, RetryPolicy, outcome_of, parse_retry_after
from threadline.sdk.export.stats import DropReason, ExportCounters
from threadline.sdk.export.transport import HttpTransport, TransportError
from threadline.sdk.guard import report_internal_error, warn_rate_limited


class BatchEncoder(Protocol):
    """Encodes one batch as an OTLP export request (spans: ``SpanEncoder``)."""

    def encode_request(self, batch: Any) -> bytes: ...


class OtlpExporter:
    """Encodes and delivers batches, retrying by the policy; counts every span's fate."""

    def __init__(
        self,
        encoder: BatchEncoder,
        transport: HttpTransport,
        policy: RetryPolicy,
        counters: ExportCounters,
        *,
        items: str = "spans",
    ) -> None:
        self.encoder = encoder
        # What a batch holds, for the warnings; each kind warns on its own schedule, so
        # failing log export never silences the warning about failing span export.
        self.items = items
        self.transport = transport
        self.policy = policy
        self.counters = counters
        self.interrupt = threading.Event()
        self.hard_deadline = float("inf")  # monotonic; set by shutdown
        self._rng = random.Random()

    def export(self, batch: Sequence[Any], counted: bool = True) -> bool:
        """Deliver ``batch``; True when the endpoint accepted it. ``counted=False`` for the
        SDK's own stats span, which is not one of the service's spans."""
        count = len(batch) if counted else 0
        try:
            body = self.encoder.encode_request(batch)
        except Exception:
            self.counters.add_dropped(DropReason.ENCODING, count)
            report_internal_error(f"encoding {self.items} for export")
            return False
        deadline = min(time.monotonic() + self.policy.deadline_s, self.hard_deadline)
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                answer = self.transport.post(body)
            except TransportError as exc:
                problem = f"cannot reach {self.transport.config.endpoint} ({exc})"
            except Exception:
                report_internal_error(f"sending {self.items}")
                problem = "sending failed"
            else:
                outcome = outcome_of(answer.status)
                if outcome is Outcome.DELIVERED:
                    self.counters.add_exported(count)
                    return True
                if outcome is Outcome.REJECTED:
                    self.counters.add_failed_request()
                    self.counters.add_dropped(DropReason.REJECTED, count)
                    warn_rate_limited(
                        f"export rejected: {self.items}",
                        f"{self.transport.config.endpoint} rejected {len(batch)} {self.items} with "
                        f"HTTP {answer.status} ({answer.body[:200]!r}); they are dropped",
                    )
                    return False
                retry_after = parse_retry_after(answer.retry_after)
                problem = f"{self.transport.config.endpoint} answered HTTP {answer.status}"
            self.counters.add_failed_request()
            wait_s = self.policy.backoff_s(attempt, retry_after, self._rng)
            deadline = min(deadline, self.hard_deadline)
            if time.monotonic() + wait_s >= deadline:
                self.counters.add_dropped(DropReason.RETRY_DEADLINE, count)
                warn_rate_limited(
                    f"export failing: {self.items}",
                    f"{problem}; dropped {len(batch)} {self.items} after {attempt + 1} attempt(s); "
                    "the service is not affected (see `threadline doctor`)",
                )
                return False
            if self.interrupt.wait(wait_s):
                # Shutdown moved the deadline: re-check before trying again.
                self.interrupt.clear()
                if time.monotonic() >= min(deadline, self.hard_deadline):
                    self.counters.add_dropped(DropReason.RETRY_DEADLINE, count)
                    return False
            attempt += 1
            self.counters.add_retried(count)
