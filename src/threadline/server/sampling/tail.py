"""Tail sampling: decide on whole traces after they go quiet, and delete the dropped ones.

Every span is written to the store first and acknowledged only once durable, as
without tail sampling; the sampler then watches what was written. A trace is decided
once no span of it has arrived for ``window_s``. It is **kept** when it has

1. ``error``: a span with status error;
2. ``slow``: a span longer than its operation's threshold (``[sampling.tail]
   latency_ms`` by span-name pattern, else ``tail_latency_ms``; the root span is the
   longest, so for the default this is the trace's duration);
3. ``rule``: a span matching a ``[sampling.tail] keep`` entry;
4. ``probability``: its trace id's low 56 bits fall in ``keep_probability``, the
   same test head sampling uses, so the share is deterministic per trace;

and is otherwise **dropped**: its spans are deleted with ``Store.delete_traces``.

Why delete after writing rather than hold spans in memory: a 200 keeps meaning
"durable", and a crash or restart inside the window loses nothing (the undecided
traces are simply all kept). The price is writing spans that are later deleted.

Bounds: at most ``max_traces`` traces wait at once (beyond it the quietest are
decided early) and as many decisions are remembered, so spans arriving after their
trace was dropped are deleted too instead of leaving a fragment.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from threadline.sampling_rules import SamplingRules, sampled_by_ratio, trace_random
from threadline.server.batch import SpanBatch
from threadline.server.model import StatusCode
from threadline.server.storage.base import Store, StoreError
from threadline.settings import ServerSettings

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# How often the background thread looks for quiet traces, as a share of the window:
# a trace is decided at most a quarter-window late.
CHECKS_PER_WINDOW: Final = 4
MAX_CHECK_INTERVAL_S: Final = 1.0
# Most trace ids deleted in one statement, so one round never holds a huge list.
MAX_DELETE_IDS: Final = 10_000
_NS_PER_MS: Final = 1_000_000
_ERROR: Final = StatusCode.ERROR.value


class KeepReason(enum.IntEnum):
    """Why a trace is kept; a lower value wins when several apply."""

    ERROR = 1
    SLOW = 2
    RULE = 3
    PROBABILITY = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class TailConfig:
    window_s: float = 10.0
    keep_probability: float = 0.1
    latency_ms: float = 1000.0
    max_traces: int = 100_000

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"tail_window_s must be greater than 0, got {self.window_s}")
        if not 0.0 <= self.keep_probability <= 1.0:
            raise ValueError(
                f"tail_keep_probability must be between 0 and 1, got {self.keep_probability}"
            )
        if self.latency_ms <= 0:
            raise ValueError(f"tail_latency_ms must be greater than 0, got {self.latency_ms}")
        if self.max_traces < 1:
            raise ValueError(f"tail_max_traces must be at least 1, got {self.max_traces}")

    @staticmethod
    def from_settings(settings: ServerSettings) -> TailConfig:
        return TailConfig(
            settings.tail_window_s,
            settings.tail_keep_probability,
            settings.tail_latency_ms,
            settings.tail_max_traces,
        )


@dataclass(frozen=True, slots=True)
class TailStats:
    """Traces kept (by reason) and dropped since the server started, and those waiting."""

    enabled: bool
    kept: Mapping[str, int] = field(default_factory=dict)
    dropped: int = 0
    pending: int = 0
    spans_deleted: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "kept": {reason.label: self.kept.get(reason.label, 0) for reason in KeepReason},
            "dropped": self.dropped,
            "pending": self.pending,
            "spans_deleted": self.spans_deleted,
        }


@dataclass(slots=True)
class _Pending:
    """A trace waiting for its decision: when its last span came, and the best reason yet."""

    last_seen: float
    reason: KeepReason | None


class TailSampler:
    """Watches written batches, decides quiet traces, deletes the dropped ones."""

    def __init__(
        self,
        store: Store,
        rules: Callable[[], SamplingRules],
        config: TailConfig,
        clock: Clock = time.monotonic,
    ) -> None:
        self._store = store
        self._rules = rules
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()  # quietest first
        self._decided: OrderedDict[str, bool] = OrderedDict()  # trace id -> kept
        self._to_delete: set[str] = set()
        self._kept = dict.fromkeys((r.label for r in KeepReason), 0)
        self._dropped = 0
        self._spans_deleted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, batch: SpanBatch) -> None:
        """Note the spans of a batch the store has made durable."""
        table = batch.table
        trace_ids = table.column("trace_id").to_pylist()
        reasons = self._span_reasons(batch)
        now = self._clock()
        with self._lock:
            for trace_id, reason in zip(trace_ids, reasons, strict=True):
                decided = self._decided.get(trace_id)
                if decided is not None:
                    if not decided:
                        self._to_delete.add(trace_id)  # a late span of a dropped trace
                    continue
                pending = self._pending.get(trace_id)
                if pending is None:
                    self._pending[trace_id] = _Pending(now, reason)
                    continue
                pending.last_seen = now
                if reason is not None and (pending.reason is None or reason < pending.reason):
                    pending.reason = reason
                self._pending.move_to_end(trace_id)

    def decide_due(self) -> int:
        """Decide every trace quiet for the window (and the oldest beyond the bound).

        Returns the number of traces decided. Deletion failures are retried next round.
        """
        deadline = self._clock() - self._config.window_s
        with self._lock:
            due: list[tuple[str, _Pending]] = []
            while self._pending:
                trace_id, pending = next(iter(self._pending.items()))
                over_bound = len(self._pending) > self._config.max_traces
                if pending.last_seen > deadline and not over_bound:
                    break
                self._pending.popitem(last=False)
                due.append((trace_id, pending))
            for trace_id, pending in due:
                reason = pending.reason or self._share(trace_id)
                self._remember(trace_id, kept=reason is not None)
                if reason is None:
                    self._dropped += 1
                    self._to_delete.add(trace_id)
                else:
                    self._kept[reason.label] += 1
            to_delete = sorted(self._to_delete)[:MAX_DELETE_IDS]
            self._to_delete.difference_update(to_delete)
        if to_delete:
            self._delete(to_delete)
        return len(due)

    def stats(self) -> TailStats:
        with self._lock:
            return TailStats(
                True, dict(self._kept), self._dropped, len(self._pending), self._spans_deleted
            )

    def start(self) -> None:
        """Decide quiet traces on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="threadline-tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop deciding; traces still waiting are kept (nothing undecided is deleted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=MAX_CHECK_INTERVAL_S + 5.0)

    def _run(self) -> None:
        interval = min(MAX_CHECK_INTERVAL_S, self._config.window_s / CHECKS_PER_WINDOW)
        while not self._stop.wait(interval):
            try:
                self.decide_due()
            except Exception:  # the loop must outlive any one bad round
                logger.exception("tail sampling round failed; retrying")

    def _share(self, trace_id: str) -> KeepReason | None:
        random_value = trace_random(int(trace_id[-14:], 16)) if trace_id else 0
        if sampled_by_ratio(random_value, self._config.keep_probability):
            return KeepReason.PROBABILITY
        return None

    def _span_reasons(self, batch: SpanBatch) -> list[KeepReason | None]:
        """The strongest keep reason each span gives its trace (probability aside)."""
        table = batch.table
        statuses = table.column("status").to_pylist()
        names = table.column("name").to_pylist()
        durations = table.column("duration_ns").to_pylist()
        policy = self._rules().tail
        keep = policy.keep
        services = table.column("service_name").to_pylist() if keep else []
        attributes = table.column("attributes").to_pylist() if keep else []
        default_ns = self._config.latency_ms * _NS_PER_MS
        reasons: list[KeepReason | None] = []
        for i, status in enumerate(statuses):
            if status == _ERROR:
                reasons.append(KeepReason.ERROR)
                continue
            name = names[i]
            threshold_ns = (
                policy.threshold_ms(name, self._config.latency_ms) * _NS_PER_MS
                if policy.latency_ms
                else default_ns
            )
            if durations[i] > threshold_ns:
                reasons.append(KeepReason.SLOW)
                continue
            if keep:
                span_attributes = json.loads(attributes[i])
                if any(m.matches(services[i], name, span_attributes) for m in keep):
                    reasons.append(KeepReason.RULE)
                    continue
            reasons.append(None)
        return reasons

    def _remember(self, trace_id: str, *, kept: bool) -> None:
        self._decided[trace_id] = kept
        if len(self._decided) > self._config.max_traces:
            self._decided.popitem(last=False)

    def _delete(self, trace_ids: list[str]) -> None:
        try:
            deleted = self._store.delete_traces(trace_ids)
        except StoreError:
            logger.warning("tail sampling could not delete %d traces; retrying", len(trace_ids))
            with self._lock:
                self._to_delete.update(trace_ids)
            return
        with self._lock:
            self._spans_deleted += deleted
