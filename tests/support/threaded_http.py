"""A socketserver-based HTTP server (http.server, werkzeug) answering on its own thread."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

SHUTDOWN_POLL_S: Final = 0.02  # how soon serve_forever notices a shutdown request
JOIN_TIMEOUT_S: Final = 5.0

Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def serving_in_thread(server: Server, *, name: str | None = None) -> Iterator[Server]:
    """Run ``server.serve_forever`` on a daemon thread; shut it down and close it on exit."""
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_S,), name=name, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=JOIN_TIMEOUT_S)
