"""When to send a failed export again, and how long to wait first.

OTLP/HTTP says: retry 429, 502, 503 and 504 (and failures to connect), honouring
``Retry-After``; anything else is final. We wait with exponential backoff and full
jitter (a uniform draw between 0 and the doubling cap, so a fleet of services that lost
the endpoint together does not come back in lockstep), and give each batch one
deadline that covers every attempt and every wait. A batch that runs out of time is
dropped and counted; the queue behind it keeps the service's memory bounded.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from enum import Enum
from typing import Final

RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})

# A Retry-After longer than this is treated as this: a server asking for an hour of
# silence must not make a batch wait past any sensible deadline anyway.
MAX_RETRY_AFTER_S: Final = 300.0


class Outcome(Enum):
    """What an answer from the endpoint means for the batch."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def outcome_of(status: int) -> Outcome:
    """The meaning of an HTTP status for an OTLP export request."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in RETRYABLE_STATUSES:
        return Outcome.RETRY
    return Outcome.REJECTED


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff and deadline for one batch."""

    deadline_s: float = 30.0
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def backoff_s(
        self, attempt: int, retry_after_s: float | None, rng: random.Random | None = None
    ) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after_s is not None:
            return retry_after_s
        cap = min(self.max_backoff_s, self.initial_backoff_s * (2 ** min(attempt, 32)))
        return (rng or random).uniform(0.0, cap)
