"""Counters of what the exporter did with each span: exported, dropped (by reason), retried.

The worker thread and the caller threads both update them, under one lock; the
caller-side update (a full queue) is rare by construction. :func:`snapshot` gives a
frozen value for ``threadline.stats()`` and for the SDK's own telemetry span.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class DropReason(StrEnum):
    """Why spans never reached the endpoint."""

    QUEUE_FULL = "queue_full"  # the queue was at queue_size when the span ended
    REJECTED = "rejected"  # the endpoint answered 400/413 or another non-retryable status
    RETRY_DEADLINE = "retry_deadline"  # retries ran out of time for the batch
    SHUTDOWN = "shutdown"  # still queued when the shutdown deadline passed
    ENCODING = "encoding"  # a span could not be encoded (a bug; logged)
    REDACTION_ERROR = "redaction_error"  # redacting the span failed: never sent in clear
    NEVER_ENDED = "never_ended"  # started, still not ended at shutdown (a host bug)


_NO_DROPS: Final = MappingProxyType({reason.value: 0 for reason in DropReason})


@dataclass(frozen=True, slots=True)
class ExportStats:
    """What happened to the spans this process finished, since it started (or forked)."""

    exported: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: _NO_DROPS)
    retried: int = 0  # spans sent again after a failed attempt (counted once per attempt)
    failed_requests: int = 0  # export requests that did not succeed (any reason)
    queued: int = 0  # spans waiting in the queue at the time of the snapshot
    # The log pipeline's own counters (``configure(logs=True)``; its records, its queue),
    # kept apart so a log flood shows as log drops and never as span drops.
    logs: ExportStats | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_attributes(self) -> dict[str, int]:
        """Flat span attributes for the ``threadline.sdk.stats`` span."""
        attributes = {
            "threadline.sdk.spans.exported": self.exported,
            "threadline.sdk.spans.retried": self.retried,
            "threadline.sdk.spans.queued": self.queued,
            "threadline.sdk.spans.dropped": self.dropped_total,
            "threadline.sdk.requests.failed": self.failed_requests,
        }
        for reason, count in self.dropped.items():
            attributes[f"threadline.sdk.spans.dropped.{reason}"] = count
        return attributes


class ExportCounters:
    """Mutable counters; every method is thread-safe and O(1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exported = 0
        self._retried = 0
        self._failed_requests = 0
        self._dropped = {reason.value: 0 for reason in DropReason}

    def add_exported(self, count: int) -> None:
        with self._lock:
            self._exported += count

    def add_dropped(self, reason: DropReason, count: int) -> None:
        with self._lock:
            self._dropped[reason.value] += count

    def add_retried(self, count: int) -> None:
        with self._lock:
            self._retried += count

    def add_failed_request(self) -> None:
        with self._lock:
            self._failed_requests += 1

    def snapshot(self, queued: int = 0) -> ExportStats:
        with self._lock:
            return ExportStats(
                exported=self._exported,
                dropped=MappingProxyType(dict(self._dropped)),
                retried=self._retried,
                failed_requests=self._failed_requests,
                queued=queued,
            )
