"""What ingest did since the server started: OTLP requests by answer, spans stored.

Every request of ``POST /v1/traces`` is counted once by the status it was answered
with, so a refused one (413 too large, 429 over its rate, 503 store behind, ...) is
a *drop* the sender saw; ``spans`` counts the spans of answered-200 requests.
Thread-safe; read by ``/metrics``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestTotals:
    requests_by_status: tuple[tuple[int, int], ...]
    spans: int


class IngestCounters:
    __slots__ = ("_lock", "_requests", "_spans")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[int, int] = {}
        self._spans = 0

    def answered(self, status_code: int, spans: int = 0) -> None:
        with self._lock:
            self._requests[status_code] = self._requests.get(status_code, 0) + 1
            self._spans += spans

    def totals(self) -> IngestTotals:
        with self._lock:
            return IngestTotals(tuple(sorted(self._requests.items())), self._spans)
