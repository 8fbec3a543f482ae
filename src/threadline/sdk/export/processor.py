"""The span processor that queues compact spans and the worker thread that exports them.

Shaped like OpenTelemetry's ``BatchSpanProcessor`` (bounded queue that counts drops,
a wake-up event, fork safety, instrumentation suppressed while exporting), with four
differences that make it cheaper for the host service:

- ``on_end`` queues a compact tuple (``compact.py``), not the span object;
- the journey keys are read from the parent context's baggage in ``on_start`` and kept
  in that tuple, then written as span attributes by the encoder, instead of
  ``span.set_attribute`` on the caller's thread. Other in-process processors then do
  not see ``session.id`` / ``user.id`` on the span: the ``stamp_span_attributes``
  setting installs the stamping processor instead, for hosts that need that;
- the worker encodes with our own OTLP encoder (``encoder.py``);
- with a ``redactor`` (the ``redaction`` setting, on by default), the worker applies it to
  each batch right before encoding (``redact_compact``), journey keys included, so the
  thread that ends a span pays nothing for redaction. A record whose redaction fails is
  dropped and counted (``redaction_error``), never sent in clear.

Nothing here blocks or raises into the caller: ``on_start`` / ``on_end`` are a dict
operation and a deque append inside the guard. ``force_flush`` and ``shutdown`` wait
at most their timeout.

After ``fork()`` the child gets a fresh queue, counters, connection and worker thread,
and exports its own spans (spans the parent had queued are the parent's to send),
with its own ``process.pid`` on the resource.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

from threadline.conventions import (
    JOURNEY_ID,
    JOURNEY_SYNTHETIC,
    SDK_STATS_SPAN,
    SESSION_ID,
    USER_ID,
)
from threadline.redaction import Redactor
from threadline.sdk.export.compact import CompactSpan, Journey, capture
from threadline.sdk.export.encoder import SpanEncoder
from threadline.sdk.export.exporter import OtlpExporter
from threadline.sdk.export.queue import SpanQueue
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.stats import DropReason, ExportCounters, ExportStats
from threadline.sdk.export.transport import HttpTransport, TransportConfig
from threadline.sdk.forks import call_in_forked_children
from threadline.sdk.guard import report_internal_error
from threadline.sdk.redaction_processor import redact_compact
from threadline.sdk.suppression import suppress_instrumentation

STATS_SPAN_NAME: Final = SDK_STATS_SPAN
# Semantic-conventions resource attribute: tells apart pre-forked workers of one service.
PROCESS_PID: Final = "process.pid"
_STATS_SCOPE: Final = InstrumentationScope("threadline.sdk")

# Spans that start in a journey but never end (a bug in the host) must not grow the
# table of captured journeys without bound; past this many, the oldest is forgotten.
MAX_OPEN_JOURNEY_SPANS: Final = 65_536

# Distinct (session, user, journey) baggage values whose attributes are kept ready.
JOURNEY_CACHE_SIZE: Final = 4096

_baggage_of: Final = baggage.get_all
_ids: Final = RandomIdGenerator()


class ExportProcessor(SpanProcessor):
    """Bounded, non-blocking batch export of finished spans over OTLP/HTTP."""

    def __init__(
        self,
        transport: TransportConfig,
        *,
        queue_size: int,
        batch_size: int,
        delay_s: float,
        retry: RetryPolicy,
        shutdown_timeout_s: float,
        resource: Resource,
        resource_defaults: Mapping[str, object] | None = None,
        pseudonymize_user_id: Callable[[str], str] | None = None,
        stats_interval_s: float = 60.0,
        redactor: Redactor | None = None,
    ) -> None:
        self._transport_config = transport
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._delay_s = delay_s
        self._retry = retry
        self._shutdown_timeout_s = shutdown_timeout_s
        self._resource = resource
        self._resource_defaults = dict(resource_defaults or {})
        # None: journey keys are stamped by another processor (stamp_span_attributes).
        self._pseudonymize = pseudonymize_user_id
        self._stats_interval_s = stats_interval_s
        self._redactor = redactor
        self._start()
        call_in_forked_children(self._start)

    def _start(self) -> None:
        """(Re)create everything per process: at construction and in a forked child."""
        self.counters = ExportCounters()
        self._queue = SpanQueue[CompactSpan](self._queue_size, self._batch_size, self.counters)
        self._journeys: dict[int, Journey] = {}
        self._journey_of: dict[tuple[object, object, object, object], Journey] = {}
        self._exporter = OtlpExporter(
            # Here, not at construction: a forked child reports its own pid.
            SpanEncoder(self._resource_defaults, {PROCESS_PID: os.getpid()}),
            HttpTransport(self._transport_config),
            self._retry,
            self.counters,
        )
        self._flush_waiters: list[threading.Event] = []
        self._waiters_lock = threading.Lock()
        self._stopping = False
        self._last_stats: ExportStats | None = None
        self._worker = threading.Thread(target=self._run, name="threadline-export", daemon=True)
        self._worker.start()

    # --- caller threads -------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pseudonymize = self._pseudonymize
        if pseudonymize is None:
            return
        try:
            entries = _baggage_of(parent_context)
            if not entries:
                return
            key = (
                entries.get(SESSION_ID),
                entries.get(USER_ID),
                entries.get(JOURNEY_ID),
                entries.get(JOURNEY_SYNTHETIC),
            )
            journey = self._journey_of.get(key)
            if journey is None:
                journey = self._journey(key, pseudonymize)
            if journey:
                journeys = self._journeys
                if len(journeys) >= MAX_OPEN_JOURNEY_SPANS:
                    journeys.pop(next(iter(journeys)), None)
                journeys[span.context.span_id] = journey
        except Exception:
            report_internal_error("journey capture")

    def _journey(
        self, key: tuple[object, object, object, object], pseudonymize: Callable[[str], str]
    ) -> Journey:
        """The journey attributes for baggage values ``key``, pseudonymised once and cached
        (a service sees few distinct sessions at a time, and each has many spans)."""
        session_id, user_id, journey_id, synthetic = key
        journey: list[tuple[str, str]] = []
        if session_id is not None:
            journey.append((SESSION_ID, str(session_id)))
        if user_id is not None:
            journey.append((USER_ID, pseudonymize(str(user_id))))
        if journey_id is not None:
            journey.append((JOURNEY_ID, str(journey_id)))
        if synthetic is not None:
            journey.append((JOURNEY_SYNTHETIC, str(synthetic)))
        if len(self._journey_of) >= JOURNEY_CACHE_SIZE:
            self._journey_of.clear()
        self._journey_of[key] = found = tuple(journey)
        return found

    def on_end(self, span: ReadableSpan) -> None:
        try:
            context = span.context
            journey = self._journeys.pop(context.span_id, None) if self._journeys else None
            if not context.trace_flags.sampled:
                return
            if self._stopping:
                self.counters.add_dropped(DropReason.SHUTDOWN, 1)
                return
            self._queue.offer(capture(span, journey))
        except Exception:
            report_internal_error("queueing a span for export")

    def offer(self, record: CompactSpan) -> None:
        """Queue a sampled span's record built by another span pipeline (``sdk/fast``)."""
        try:
            if self._stopping:
                self.counters.add_dropped(DropReason.SHUTDOWN, 1)
                return
            self._queue.offer(record)
        except Exception:
            report_internal_error("queueing a span for export")

    def stats(self) -> ExportStats:
        return self.counters.snapshot(queued=len(self._queue))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued now; False if that did not finish within the timeout."""
        if not self._worker.is_alive():
            return len(self._queue) == 0
        done = threading.Event()
        with self._waiters_lock:
            self._flush_waiters.append(done)
        self._queue.batch_ready.set()
        return done.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        """Flush what is queued within ``shutdown_timeout_s``, then stop; drops are counted."""
        if self._stopping:
            return
        self._stopping = True
        deadline = time.monotonic() + self._shutdown_timeout_s
        self._exporter.hard_deadline = deadline
        self._exporter.interrupt.set()
        self._queue.batch_ready.set()
        self._worker.join(max(0.0, deadline - time.monotonic()) + 0.5)
        left = len(self._queue.take(self._queue_size + self._batch_size))
        if left:
            self.counters.add_dropped(DropReason.SHUTDOWN, left)

    # --- worker thread --------------------------------------------------------------

    def _run(self) -> None:
        with suppress_instrumentation():  # our own HTTP requests are not traced
            try:
                self._loop()
            except Exception:
                report_internal_error("export worker")

    def _loop(self) -> None:
        next_stats = time.monotonic() + self._stats_interval_s
        while True:
            wait_s = self._delay_s
            if self._stats_interval_s > 0:
                wait_s = max(0.0, min(wait_s, next_stats - time.monotonic()))
            self._queue.batch_ready.wait(wait_s)
            self._queue.batch_ready.clear()
            with self._waiters_lock:
                waiters, self._flush_waiters = self._flush_waiters, []
            stopping = self._stopping
            self._export_queued(stopping)
            for waiter in waiters:
                waiter.set()
            if stopping:
                self._exporter.transport.close()
                return
            if self._stats_interval_s > 0 and time.monotonic() >= next_stats:
                self._send_stats()
                next_stats = time.monotonic() + self._stats_interval_s

    def _export_queued(self, stopping: bool) -> None:
        # Bounded by the queue's length when we start: spans that arrive meanwhile wait
        # for the next round, so a busy service cannot keep the worker here forever.
        rounds = len(self._queue) // self._batch_size + 1
        for _ in range(rounds):
            if stopping and time.monotonic() >= self._exporter.hard_deadline:
                return
            batch = self._queue.take(self._batch_size)
            if not batch:
                return
            if self._redactor is not None:
                batch = self._redacted(batch, self._redactor)
                if not batch:
                    continue
            self._exporter.export(batch)

    def _redacted(self, batch: list[CompactSpan], redactor: Redactor) -> list[CompactSpan]:
        """``batch`` with the rules applied; a record that cannot be redacted is dropped."""
        redacted: list[CompactSpan] = []
        for record in batch:
            try:
                redacted.append(redact_compact(record, redactor))
            except Exception:
                self.counters.add_dropped(DropReason.REDACTION_ERROR, 1)
                report_internal_error("redaction")  # rate-limited; the record is not sent
        return redacted

    def _send_stats(self) -> None:
        """The SDK's own telemetry: one ``threadline.sdk.stats`` span when counters moved
        since the last report the endpoint accepted.

        Sent every ``stats_interval_s`` while running, not at shutdown: the counters of the
        last interval stay available in process through ``threadline.stats()``.
        """
        current = self.stats()
        previous = self._last_stats
        if previous is not None and (
            previous.exported == current.exported
            and previous.dropped_total == current.dropped_total
            and previous.retried == current.retried
        ):
            return
        if previous is None and current.exported == 0 and current.dropped_total == 0:
            return
        # Remembered only once delivered: a report lost to a failing backend is sent again
        # at the next interval, or the last counters of a burst would never arrive.
        if self._exporter.export([self._stats_record(current)], counted=False):
            self._last_stats = current

    def _stats_record(self, stats: ExportStats) -> CompactSpan:
        now = time.time_ns()
        context = SpanContext(
            _ids.generate_trace_id(),
            _ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        # The queue's capacity beside its fill, so the server can show queue use.
        attributes = {
            **stats.as_attributes(),
            "threadline.sdk.queue.capacity": self._queue_size,
            PROCESS_PID: os.getpid(),
        }
        return (
            context,
            None,
            STATS_SPAN_NAME,
            SpanKind.INTERNAL,
            now,
            now,
            attributes,
            None,
            None,
            Status(),
            _STATS_SCOPE,
            self._resource,
            None,
            None,
        )
