"""Where OTLP trace requests are decoded: in the server process, or in worker processes.

Decoding is Python code holding the interpreter lock, so one process decodes on one
core however many requests arrive. With ``workers`` > 1 the request bodies go to
that many worker processes (``concurrent.futures.ProcessPoolExecutor``, started with
``spawn``: the server has threads, which ``fork`` would copy mid-flight) and each
worker sends back its decoded table as Arrow IPC, the format the table is already
in, so nothing is re-encoded and the server process reads it without copying.
The server accepts requests once every worker is up (``start``): a first export
answered seconds late, while workers import, would be given up by an SDK's timeout.
Writing stays in the server process, where the one store writer is (DuckDB allows
one writer per file): a 200 still means the spans are durable.

What a worker answers is what the in-process decoder would: a request it refuses
is the same ``ThreadlineError`` (same status, same message), sent back as its type
and attributes since the error classes' constructors do not round-trip a pickle.

A worker that dies (killed, out of memory) breaks the pool: every request it had
is answered 503 with ``Retry-After`` (nothing was acknowledged, the sender retries),
and the next request starts a fresh pool. On shutdown the pool finishes what it has
and its processes exit; a server killed outright leaves none behind (each worker
exits within a second of losing its parent).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.queues
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, Protocol, TypeVar, cast

import anyio
import anyio.to_thread
import pyarrow as pa

from threadline.server.batch import SpanBatch
from threadline.server.errors import ThreadlineError, Unavailable
from threadline.server.ingest.decode import PayloadFormat
from threadline.server.ingest.limits import IngestLimits
from threadline.server.ingest.redact import ingest_redactor
from threadline.server.ingest.span_decoder import SpanDecoder
from threadline.settings import ConfigError, ServerSettings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# A dead worker is replaced at once; a second or two covers starting the new
# processes (they import the decoder) before the sender's retry.
WORKER_LOST_RETRY_AFTER_S: Final = 2
# How often a worker checks that the server that started it is still there.
PARENT_CHECK_S: Final = 1.0
# How long the server's start waits for its workers to be ready (~1 s each on an idle
# machine, several on a loaded one); past it, the server serves and requests wait.
WORKER_START_TIMEOUT_S: Final = 60.0


class SpanDecoding(Protocol):
    """Decodes a request body to a batch, raising the decoder's ``ThreadlineError``s.

    ``in_process``: the one thread this process decodes on (``OneThread``): spans with
    one worker, and log requests whatever the workers, so that the two never decode at
    once beside the store's writer.
    """

    in_process: OneThread

    async def decode(self, body: bytes, payload_format: PayloadFormat) -> SpanBatch: ...

    def start(self) -> None:
        """Get ready to decode (worker processes started)."""

    def close(self) -> None:
        """Stop; decoding requests still running are finished first."""


def worker_count(settings: ServerSettings) -> int:
    """The decoding processes ``settings.workers`` asks for (0: one per CPU core)."""
    if settings.workers < 0:
        raise ConfigError(f"workers must be 0 (one per CPU core) or more, got {settings.workers}")
    return settings.workers or os.cpu_count() or 1


def span_decoding(settings: ServerSettings) -> SpanDecoding:
    """In-process decoding for one worker, a pool of worker processes for more."""
    count = worker_count(settings)
    if count == 1:
        return InProcessDecoding(settings)
    return WorkerPoolDecoding(settings, count)


class OneThread:
    """Runs blocking calls on a worker thread, one call at a time.

    For decoding in the server process: Python code that holds the interpreter lock
    gains nothing from a second thread, and each one more is a thread the store's writer
    waits behind for the lock (``InProcessDecoding``).
    """

    def __init__(self) -> None:
        # Made on the event loop, at the first call: anyio before 4 binds a limiter to
        # the loop that creates it.
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, call: Callable[..., _T], *args: object) -> _T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(call, *args, limiter=self._limiter)


class InProcessDecoding:
    """Decoding on one thread of the server process (``workers = 1``), one request at a time.

    Decoding holds the interpreter lock, so a second decoding thread adds no speed, only
    another contender for the lock, which the store's writer thread takes back after each
    statement of a commit. On the shared thread pool (forty threads) every request in
    flight decoded at once, and a commit of one request's spans waited 0.4–0.8 s for the
    lock against 40–50 ms of its own work; one decoding thread took a one-worker server
    from ~36k to ~60k spans/s (``docs/performance.md``, "One decoding thread"). A large
    request now holds the smaller ones behind it for its decoding time (bounded by the
    request size limit), which they shared with it before.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self._decoder = SpanDecoder(IngestLimits.from_settings(settings), ingest_redactor(settings))
        self.in_process = OneThread()

    async def decode(self, body: bytes, payload_format: PayloadFormat) -> SpanBatch:
        return await self.in_process.run(self._decoder.decode, body, payload_format)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


class WorkerPoolDecoding:
    """Decoding in ``count`` worker processes; the pool is replaced when a worker dies."""

    def __init__(self, settings: ServerSettings, count: int) -> None:
        self._settings = settings
        self._count = count
        self.in_process = OneThread()  # for log requests: spans go to the workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        # Each worker of the newest pool puts its pid here once it is up.
        self._started: multiprocessing.queues.Queue[int] | None = None
        self._up: list[int] = []
        self._closed = False

    def start(self) -> None:
        """Start the workers and wait until each answers (at most
        ``WORKER_START_TIMEOUT_S``): the server accepts requests only then, so its first
        requests do not wait seconds for workers to import (an SDK with a short export
        timeout would give them up)."""
        self._current()
        started, deadline = self._started, time.monotonic() + WORKER_START_TIMEOUT_S
        while started is not None and len(self._up) < self._count:
            try:
                self._up.append(started.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                logger.warning(
                    "%d of %d decoding workers not up after %.0f s; serving, requests wait",
                    self._count - len(self._up),
                    self._count,
                    WORKER_START_TIMEOUT_S,
                )
                break

    def worker_pids(self) -> list[int]:
        """The process ids of the workers ``start`` saw come up."""
        return sorted(self._up)

    async def decode(self, body: bytes, payload_format: PayloadFormat) -> SpanBatch:
        pool = self._current()
        try:
            future = _submit(pool, _decode, body, payload_format.value)
        except BrokenProcessPool:
            # A worker died while idle: this request has not started, so it runs on
            # a fresh pool (or, if that one is lost too, is refused for a retry).
            pool = self._replace(pool)
            try:
                future = _submit(pool, _decode, body, payload_format.value)
            except BrokenProcessPool as exc:
                raise _worker_lost() from exc
        try:
            answer = await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._replace(pool)
            logger.warning("a decoding worker stopped; the pool is restarted")
            raise _worker_lost() from exc
        if isinstance(answer, _Refused):
            raise answer.error()
        return SpanBatch(pa.ipc.open_stream(answer).read_all())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Unavailable("the server is shutting down; retry later")
            if self._pool is None:
                self._pool = self._new_pool()
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A working pool in place of ``broken`` (replaced once, by whoever comes first)."""
        with self._lock:
            if self._closed:
                raise Unavailable("the server is shutting down; retry later")
            if self._pool is broken or self._pool is None:
                self._pool = self._new_pool()
            pool = self._pool
        broken.shutdown(wait=False, cancel_futures=True)
        return pool

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        self._started = context.Queue()
        pool = ProcessPoolExecutor(
            max_workers=self._count,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self._settings, os.getpid(), self._started),
        )
        # The pool starts a process per task while none is idle: one task each starts
        # them all now, so the first requests do not wait for a worker to import.
        try:
            for _ in range(self._count):
                _submit(pool, _ready)
        except BrokenProcessPool:
            pass  # a worker died while starting: the next request replaces this pool
        return pool


def _submit(pool: ProcessPoolExecutor, task: Callable[..., Any], *args: Any) -> Future[Any]:
    """``pool.submit``, a pool found broken while it starts a process included.

    Submitting may start a worker, which hands it the pool's queues; when another
    worker has just died, the pool closes those queues before it marks itself broken,
    and the start fails with ``OSError: handle is closed`` instead of
    ``BrokenProcessPool``. Both mean the same here: this pool is lost.
    """
    try:
        return pool.submit(task, *args)
    except OSError as exc:
        raise BrokenProcessPool(f"a worker could not be started: {exc}") from exc


def _worker_lost() -> Unavailable:
    return Unavailable(
        "a decoding worker stopped while decoding this request; nothing was stored, retry later",
        retry_after_s=WORKER_LOST_RETRY_AFTER_S,
    )


# -- inside a worker process ---------------------------------------------------------

_decoder: SpanDecoder | None = None


def _start_worker(
    settings: ServerSettings, server_pid: int, started: multiprocessing.queues.Queue[int]
) -> None:
    global _decoder
    _decoder = SpanDecoder(IngestLimits.from_settings(settings), ingest_redactor(settings))
    # The server's pid comes from the server: read here, it could already be the pid of
    # whoever adopted this worker after the server was killed during its start.
    watch = threading.Thread(
        target=_exit_with_parent, args=(server_pid,), name="threadline-parent", daemon=True
    )
    watch.start()
    started.put(os.getpid())


def _exit_with_parent(parent: int) -> None:
    # A server killed outright (SIGKILL, out of memory) cannot stop its pool; its
    # workers notice they were handed to another parent and exit instead of lingering.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _ready() -> int:
    return os.getpid()


class _Refused:
    """A ``ThreadlineError`` as it crosses back: its class and attributes."""

    __slots__ = ("kind", "message", "state")

    def __init__(self, error: ThreadlineError) -> None:
        self.kind = type(error)
        self.message = error.message
        self.state = dict(vars(error))

    def error(self) -> ThreadlineError:
        error = self.kind.__new__(self.kind)
        Exception.__init__(error, self.message)
        vars(error).update(self.state)
        return error


def _decode(body: bytes, payload_format: str) -> bytes | _Refused:
    if _decoder is None:  # the initializer runs before any task
        raise RuntimeError("decoding worker was not started")
    try:
        table = _decoder.decode(body, PayloadFormat(payload_format)).table
    except ThreadlineError as exc:
        return _Refused(exc)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return cast(bytes, sink.getvalue().to_pybytes())
