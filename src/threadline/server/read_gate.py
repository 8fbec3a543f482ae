"""The read gate: API reads run a few at a time, wait in a bounded queue, or get 503.

A trace view of a hundred thousand spans or a scan of every span for a service map
takes seconds of CPU and hundreds of megabytes. Served as they come, a burst of them
fills the worker thread pool the whole server shares, and everything else waits
behind them: probes time out, ingest stalls, memory grows with every reader. The
gate sits in front of the API's reads (``GET`` and ``HEAD`` under ``/api/``, except
the documentation): at most ``read_concurrency`` run at once, at most ``read_queue``
more wait their turn, and any further read is answered 503 with ``Retry-After`` at
once, before it costs anything. Probes, ingest, writes and the UI's pages do not pass
through it, so they keep answering however heavy the reads are.

The gate is a pure ASGI middleware counting on the event loop; no lock is held
across a request but the semaphore slot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.conventions import API_PREFIX
from threadline.settings import ConfigError

# A read holds its slot for up to a few seconds; a second later the queue has moved.
READ_RETRY_AFTER_S: Final = 1
_READ_METHODS: Final = frozenset({"GET", "HEAD"})


class ReadGate:
    """Middleware admitting ``concurrency`` API reads at once with ``queue`` more waiting."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        concurrency: int,
        queue: int,
        exempt_paths: Collection[str] = (),
    ) -> None:
        check_gate_settings(concurrency, queue)
        self._app = app
        self._concurrency = concurrency
        self._queue = queue
        self._exempt = frozenset(exempt_paths)
        # Created on first use: the semaphore belongs to the loop that serves.
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        """Reads waiting for a slot now."""
        return self._waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._gated(scope):
            await self._app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        slots = self._slots
        if slots.locked() and self._waiting >= self._queue:
            self.refused += 1
            await _refuse(send, self._concurrency, self._queue)
            return
        self._waiting += 1
        try:
            await slots.acquire()
        finally:
            self._waiting -= 1
        try:
            await self._app(scope, receive, send)
        finally:
            slots.release()

    def _gated(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in _READ_METHODS:
            return False
        path: str = scope["path"]
        return path.startswith(API_PREFIX + "/") and path not in self._exempt


def check_gate_settings(concurrency: int, queue: int) -> None:
    """``ConfigError`` naming the setting unless both values can work."""
    if concurrency < 1:
        raise ConfigError(f"read_concurrency must be at least 1, got {concurrency}")
    if queue < 0:
        raise ConfigError(f"read_queue must be 0 or more, got {queue}")


async def _refuse(send: Send, concurrency: int, queue: int) -> None:
    body = json.dumps(
        {
            "error": f"the server is busy with {concurrency} reads and {queue} waiting "
            "(read_concurrency, read_queue); retry later"
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(READ_RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
