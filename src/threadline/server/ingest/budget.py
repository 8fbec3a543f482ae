"""The ingest memory budget: requests being read and decoded share a fixed number of bytes.

Decoding costs a multiple of the bytes decoded: measured on these machines, an OTLP
JSON body peaks at ~21 bytes of Python objects per byte (the parsed document plus
its copy as message fields), protobuf at ~13. Each request reserves its estimate
before the work: first the body as declared (before it is read), then, once it is
decompressed, ``COST_PER_BYTE`` of its format times its size (before it is decoded).
A request that does not fit beside those already reserved answers 503 with
``Retry-After`` without costing anything, so concurrent large requests cannot add up
past ``ingest_memory_bytes``; one that could never fit, even alone, is a 413.
"""

from __future__ import annotations

import threading
from typing import Final

from threadline.server.errors import PayloadTooLarge, Unavailable
from threadline.server.ingest.decode import PayloadFormat
from threadline.settings import ConfigError

# Bytes of memory decoding costs per byte of uncompressed body, rounded up from the
# peaks measured by bench/heavy_reads.py's ingest figures (21 and 13).
COST_PER_BYTE: Final[dict[PayloadFormat, int]] = {
    PayloadFormat.JSON: 24,
    PayloadFormat.PROTOBUF: 16,
}
# Decoding a large request takes a second or two; by then the budget has room again.
RETRY_AFTER_S: Final = 1


class MemoryBudget:
    """``total`` bytes shared by the requests in flight; see the module docstring."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ConfigError(f"ingest_memory_bytes must be at least 1, got {total}")
        self.total = total
        self._lock = threading.Lock()
        self._used = 0
        self.refused = 0

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, amount: int) -> Reservation:
        """A reservation of ``amount`` bytes; 503 when they do not fit now, 413 never."""
        reservation = Reservation(self)
        reservation.grow_to(amount)
        return reservation

    def adjust(self, delta: int) -> None:
        """Take ``delta`` more bytes (give back, when negative); 503 when they do not fit."""
        with self._lock:
            if delta > 0 and self._used + delta > self.total:
                self.refused += 1
                raise Unavailable(
                    f"the server is decoding {self._used} bytes' worth of requests; this one "
                    f"needs about {delta} more than the {self.total} allowed "
                    "(ingest_memory_bytes); retry later",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._used += delta


class Reservation:
    """Bytes of a ``MemoryBudget`` one request holds until ``release``."""

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.amount = 0

    def grow_to(self, amount: int) -> None:
        """Hold ``amount`` bytes in all (never fewer than now): 503/413 if they do not fit."""
        if amount > self._budget.total:
            raise PayloadTooLarge(
                f"decoding this request would take about {amount} bytes, more than the "
                f"whole ingest memory budget of {self._budget.total} (ingest_memory_bytes): "
                "send smaller batches"
            )
        if amount > self.amount:
            self._budget.adjust(amount - self.amount)
            self.amount = amount

    def release(self) -> None:
        if self.amount:
            self._budget.adjust(-self.amount)
            self.amount = 0
