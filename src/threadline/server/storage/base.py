"""The storage contract every backend implements and the contract suite checks.

Contract, in prose (the suite in ``tests/server/storage`` holds every backend to it):

- **Ownership.** ``write`` takes a batch the caller no longer changes (batches are
  immutable). Records and summaries returned by queries are new values the caller
  owns.
- **Durability.** The future returned by ``write`` resolves only after the batch is
  durable: a process killed after that loses nothing. Writes that arrive close
  together may share one commit (group commit); each still resolves only after its
  own data is durable. On failure the future raises and none of the batch is kept.
- **Back-pressure.** ``write`` never blocks for long: when the store cannot accept
  more pending batches it raises ``StoreOverloaded`` at once, and the receiver
  answers 503 with ``Retry-After``.
- **Idempotence.** Writes are not deduplicated; a re-sent batch is stored twice.
  Readers that need one span per id deduplicate on ``(trace_id, span_id)``.
- **Order.** ``get_trace`` returns spans ordered by start time; searches order as
  documented on each method.
- **Threads.** Every method may be called from any thread.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Literal, Protocol

from threadline.server.batch import SpanBatch
from threadline.server.model import (
    JourneySummary,
    ServiceOperations,
    SpanRecord,
    StoreCounts,
    TraceQuery,
    TraceSummary,
)

JourneyOrder = Literal["recent", "slowest"]


class StoreError(Exception):
    """The store could not do what was asked."""


class StoreOverloaded(StoreError):
    """Too many writes are pending; try again later."""


class Store(Protocol):
    def write(self, batch: SpanBatch) -> Future[None]:
        """Queue ``batch``; the future resolves once it is durable (see contract)."""
        ...

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        """All spans of one trace ordered by start time; empty if unknown."""
        ...

    def search_traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Traces with at least one span matching every filter, newest first.

        ``service``/``operation``/``status`` match any span of the trace; duration
        and time filters apply to the whole trace (first start to last end).
        """
        ...

    def journey_traces(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> list[TraceSummary]:
        """Traces carrying the session (or user) id on any span, oldest first."""
        ...

    def list_journeys(
        self, *, order: JourneyOrder = "recent", limit: int = 20
    ) -> list[JourneySummary]:
        """Journeys (by session id), most recent first or slowest first."""
        ...

    def services(self) -> list[ServiceOperations]:
        """Every service seen and its span names, sorted by name."""
        ...

    def counts(self) -> StoreCounts:
        """How many spans, traces and sessions are stored."""
        ...

    def close(self) -> None:
        """Finish pending writes and release the backend; idempotent."""
        ...
