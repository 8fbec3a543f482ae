"""A token bucket: the traces-per-second limit a sampling rule may carry.

The bucket holds at most ``rate`` tokens (at least one) and refills continuously at
``rate`` tokens a second, so a rule allows short bursts up to one second's worth and
``rate`` a second over any longer stretch. The clock is injectable so tests are
deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allows ``rate`` events a second on average, bursts up to one second's worth."""

    __slots__ = ("_capacity", "_clock", "_lock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be greater than 0, got {rate}")
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self._capacity
        self._stamp = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def take(self) -> bool:
        """Spend one token if there is one; False means over the limit."""
        with self._lock:
            now = self._clock()
            # A clock that steps back (it should not, it is monotonic) refills nothing.
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
