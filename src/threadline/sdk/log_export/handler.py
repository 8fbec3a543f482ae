"""The ``logging.Handler`` that queues records for OTLP export, and its worker.

``emit`` runs on the thread that logged: it reads the current span's ids and the
journey baggage and appends a tuple to a bounded queue (``SpanQueue``; full: dropped
and counted). It never formats, blocks or raises. The worker thread takes batches,
prepares them (``record.prepare``: message, attributes, pseudonym, redaction) and
hands them to the span pipeline's ``OtlpExporter`` (one retry deadline, backoff,
``Retry-After``) over a transport of its own to ``/v1/logs``, with its own counters.
Records logged by the worker's thread (the exporter's own warnings) are not exported,
so exporting can never feed itself. After ``fork()`` the child starts a fresh queue,
counters and worker, and exports its own records.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from opentelemetry import baggage, trace

from threadline.conventions import JOURNEY_ID, LOGS_PATH, SESSION_ID, USER_ID
from threadline.redaction import Redactor
from threadline.sdk.export.exporter import OtlpExporter
from threadline.sdk.export.queue import SpanQueue
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.stats import DropReason, ExportCounters, ExportStats
from threadline.sdk.export.transport import HttpTransport, TransportConfig
from threadline.sdk.forks import call_in_forked_children
from threadline.sdk.guard import report_internal_error
from threadline.sdk.log_export.encoder import LogEncoder
from threadline.sdk.log_export.record import CapturedLog, EncodedLog, prepare
from threadline.sdk.suppression import suppress_instrumentation

_current_span: Final = trace.get_current_span
_baggage_of: Final = baggage.get_all


class LogExportHandler(logging.Handler):
    """Exports the records it handles as OTLP logs; see the module docstring."""

    def __init__(
        self,
        transport: TransportConfig,
        *,
        level: int,
        queue_size: int,
        batch_size: int,
        delay_s: float,
        retry: RetryPolicy,
        shutdown_timeout_s: float,
        resource: Mapping[str, object],
        pseudonymize_user_id: Callable[[str], str],
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(level)
        self._transport = TransportConfig(
            endpoint=transport.endpoint,
            timeout_s=transport.timeout_s,
            compression=transport.compression,
            ca_file=transport.ca_file,
            client_cert=transport.client_cert,
            client_key=transport.client_key,
            headers=transport.headers,
            path=LOGS_PATH,
        )
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._delay_s = delay_s
        self._retry = retry
        self._shutdown_timeout_s = shutdown_timeout_s
        self._resource = dict(resource)
        self._pseudonymize = pseudonymize_user_id
        self._redactor = redactor
        self._start()
        call_in_forked_children(self._start)

    def _start(self) -> None:
        """(Re)create everything per process: at construction and in a forked child."""
        self.counters = ExportCounters()
        self._queue = SpanQueue[CapturedLog](
            self._queue_size,
            self._batch_size,
            self.counters,
            items="log records",
            setting="logs_queue_size",
        )
        self._exporter = OtlpExporter(
            LogEncoder({**self._resource, "process.pid": os.getpid()}),
            HttpTransport(self._transport),
            self._retry,
            self.counters,
            items="log records",
        )
        self._stopping = False
        self._flushed = threading.Condition()
        self._worker = threading.Thread(target=self._run, name="threadline-log-export", daemon=True)
        self._worker.start()

    # --- the caller's thread ----------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if threading.current_thread() is self._worker:
                return
            context = _current_span().get_span_context()
            journey = _baggage_of()
            self._queue.offer(
                CapturedLog(
                    record,
                    context.trace_id,
                    context.span_id,
                    context.trace_flags,
                    journey.get(SESSION_ID),
                    journey.get(USER_ID),
                    journey.get(JOURNEY_ID),
                )
            )
        except Exception:
            report_internal_error("queueing a log record")

    def stats(self) -> ExportStats:
        return self.counters.snapshot(len(self._queue))

    def flush(self) -> None:
        self.drain()

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until what is queued now has been sent (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._queue.batch_ready.set()
        with self._flushed:
            while len(self._queue) or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.batch_ready.set()
                self._flushed.wait(min(remaining, 0.05))
        return True

    def close(self) -> None:
        """Send what is queued (within the shutdown timeout); the handler keeps working.

        ``logging`` closes every handler it knows, not only at exit: a later
        ``logging.config.dictConfig`` (what uvicorn, Django and gunicorn run at start)
        closes them all and leaves the root logger's handlers in place. A handler that
        stopped here would stay on the root logger and silently export nothing more, so
        only :meth:`stop` (``threadline.shutdown()``) ends the worker.
        """
        self.drain(self._shutdown_timeout_s)
        super().close()

    def stop(self) -> None:
        """Send what is queued (within the shutdown timeout), then stop the worker."""
        if not self._stopping:
            self.drain(self._shutdown_timeout_s)
            self._stopping = True
            self._exporter.hard_deadline = time.monotonic() + self._shutdown_timeout_s
            self._exporter.interrupt.set()
            self._queue.batch_ready.set()
            self._worker.join(self._shutdown_timeout_s)
            self._exporter.transport.close()
        super().close()

    # --- the worker thread ------------------------------------------------------------

    _busy = False

    def _run(self) -> None:
        with suppress_instrumentation():
            while not self._stopping:
                self._queue.batch_ready.wait(self._delay_s)
                self._queue.batch_ready.clear()
                while len(self._queue) and not self._stopping:
                    self._busy = True
                    try:
                        self._export(self._queue.take(self._batch_size))
                    finally:
                        self._busy = False
                with self._flushed:
                    self._flushed.notify_all()

    def _export(self, batch: list[CapturedLog]) -> None:
        prepared: list[EncodedLog] = []
        for captured in batch:
            try:
                prepared.append(prepare(captured, self._pseudonymize, self._redactor))
            except Exception:
                # A message whose arguments do not format, or redaction that failed:
                # the record is dropped and counted, never sent unredacted.
                self.counters.add_dropped(DropReason.ENCODING, 1)
        if prepared:
            self._exporter.export(prepared)
