"""How a send is retried: exponential backoff with jitter, within one deadline.

The shape of the SDK's OTLP retry (and the OTLP specification's advice): a failed
attempt that may succeed later (no connection, a timeout, 408, 429, 5xx) is tried
again after ``initial_s``, then twice as long each time up to ``max_s``; each wait
is jittered between half and all of it, so receivers that come back are not hit by
every Threadline at the same instant. ``Retry-After`` (seconds) from a 429 or 503
replaces the computed wait when it is longer. A send is abandoned when the next
attempt would start after ``deadline_s`` from the first; other 4xx answers are
final at once (the receiver refuses the body, and sending it again will not help).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

RETRYABLE_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff bounds, in seconds; ``timeout_s`` bounds each attempt."""

    initial_s: float = 1.0
    max_s: float = 60.0
    # Ten minutes: longer than most receiver restarts, shorter than a page is useful.
    deadline_s: float = 600.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {self.initial_s}, {self.max_s}")
        if self.deadline_s <= 0 or self.timeout_s <= 0:
            raise ValueError("deadline_s and timeout_s must be more than 0")

    def delay_s(
        self, attempt: int, rng: random.Random, retry_after_s: float | None = None
    ) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_s, self.initial_s * 2 ** (attempt - 1))
        delay: float = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after_s is not None and retry_after_s > delay:
            return float(min(retry_after_s, self.deadline_s))
        return delay


def retryable(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUS


def retry_after_s(header: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta form); a date or nonsense is ignored."""
    if header is None:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if value >= 0 else None
