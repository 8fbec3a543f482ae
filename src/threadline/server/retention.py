"""Retention: a thread that deletes spans older than ``retention`` and keeps the store
under ``max_db_bytes``, on a schedule, while ingest and queries go on.

Every ``retention_interval`` it:

1. deletes the spans that started more than ``retention`` ago;
2. if the store still uses more than ``max_db_bytes``, rewrites it (``compact``) so
   the size is what the live spans take, not what earlier deletes left behind; if it
   is still over, deletes the oldest spans in steps of at most ``MAX_STEP_FRACTION``,
   each sized from the measured bytes per span to bring it to ``SIZE_TARGET`` of the
   cap, measuring again after each (and compacting when a delete freed too little),
   until it is under the cap or ``MAX_SIZE_STEPS`` are done.

A ``DELETE`` frees a block only once every row in it is gone, so the bytes in use
fall in jumps; measuring after each step, never predicting, is what keeps a store
from being emptied by runs that each think it is still too big.

Each deletion is logged (how many spans, up to when, why). A failure is logged and
tried again on the next run: retention must never stop the server.

Deletes run beside the writer (see ``storage.duckdb.deletion``), so neither ingest
nor reads wait for them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Final

from threadline.server.analysis.durations import DURATION_FORMS, format_time, parse_duration_ns
from threadline.server.storage.base import Store, StoreError
from threadline.settings import ConfigError, ServerSettings

logger = logging.getLogger(__name__)

# After a size-cap deletion the store should sit this far below the cap, so the next
# few minutes of ingest do not trigger another deletion (and rewrite) at once.
SIZE_TARGET: Final = 0.95
# Most of the stored spans one step deletes, and most steps in one run: a wrong
# measurement can cost at most this much before the next measurement corrects it.
MAX_STEP_FRACTION: Final = 0.5
MAX_SIZE_STEPS: Final = 4
# How long ``stop`` waits for a run in progress to finish.
STOP_TIMEOUT_S: Final = 30.0


def parse_span_of_time(text: str, key: str) -> int:
    """Nanoseconds in ``7d``, ``12h``, ``1d12h``, ``30s``; a bad value names ``key``."""
    try:
        nanoseconds = parse_duration_ns(text.replace(" ", "").lower())
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    if nanoseconds <= 0:
        raise ConfigError(f"{key}: {text!r} must be longer than zero; use {DURATION_FORMS}")
    return nanoseconds


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What to delete: spans older than ``max_age_ns`` and beyond ``max_bytes``."""

    max_age_ns: int | None = None
    max_bytes: int | None = None
    interval_s: float = 60.0

    @property
    def enabled(self) -> bool:
        return self.max_age_ns is not None or self.max_bytes is not None

    @staticmethod
    def from_settings(settings: ServerSettings) -> RetentionPolicy:
        """The policy of ``retention``, ``max_db_bytes`` and ``retention_interval``."""
        if settings.max_db_bytes < 0:
            raise ConfigError("max_db_bytes: must be 0 (no cap) or a number of bytes")
        interval_ns = parse_span_of_time(settings.retention_interval, "retention_interval")
        return RetentionPolicy(
            max_age_ns=(
                parse_span_of_time(settings.retention, "retention") if settings.retention else None
            ),
            max_bytes=settings.max_db_bytes or None,
            interval_s=interval_ns / 1e9,
        )


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run deleted."""

    by_age: int = 0
    by_size: int = 0


def enforce(store: Store, policy: RetentionPolicy, now_ns: int) -> RetentionRun:
    """Delete what ``policy`` says is too old or too much, once; log what went."""
    by_age = 0
    if policy.max_age_ns is not None:
        cutoff = now_ns - policy.max_age_ns
        by_age = store.delete_older_than(cutoff)
        if by_age:
            logger.info(
                "retention deleted %d spans that started before %s", by_age, format_time(cutoff)
            )
    by_size = 0 if policy.max_bytes is None else enforce_size_cap(store, policy.max_bytes)
    return RetentionRun(by_age=by_age, by_size=by_size)


def enforce_size_cap(store: Store, max_bytes: int) -> int:
    """Delete the oldest spans until ``store`` uses at most ``max_bytes``; spans deleted."""
    size = store.size_bytes()
    if size <= max_bytes:
        return 0
    store.compact()
    compacted = store.size_bytes()
    logger.info(
        "size cap: the store used %d bytes, %d once rewritten (max_db_bytes %d)",
        size,
        compacted,
        max_bytes,
    )
    size = compacted
    deleted = 0
    for _ in range(MAX_SIZE_STEPS):
        if size <= max_bytes:
            break
        fraction = min(MAX_STEP_FRACTION, 1.0 - max_bytes * SIZE_TARGET / size)
        cutoff_at = store.start_ns_quantile(fraction)
        if cutoff_at is None:
            break
        step = store.delete_older_than(cutoff_at + 1)
        deleted += step
        measured = store.size_bytes()
        if measured > max_bytes:
            # Rows went but their row groups stayed: rewriting gives the space back.
            store.compact()
            measured = store.size_bytes()
        logger.info(
            "size cap deleted the %d oldest spans (started up to %s): the store used %d "
            "bytes, now %d, max_db_bytes %d",
            step,
            format_time(cutoff_at),
            size,
            measured,
            max_bytes,
        )
        size = measured
    return deleted


class RetentionScheduler:
    """Runs ``enforce`` every ``policy.interval_s`` on a daemon thread until stopped."""

    def __init__(self, store: Store, policy: RetentionPolicy) -> None:
        self._store = store
        self._policy = policy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the run in progress, if any; idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.wait(self._policy.interval_s):
            try:
                enforce(self._store, self._policy, time.time_ns())
            except StoreError as exc:
                logger.warning(
                    "retention run failed, retrying in %.0f s: %s", self._policy.interval_s, exc
                )
