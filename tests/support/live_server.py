"""Real servers inside the test process: any ASGI app, or Threadline's, under uvicorn.

Each runs on its own thread on a socket bound to a free loopback port before uvicorn
starts, so the port is known (and put in the settings) before the app exists.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI

from threadline.server.alerting.evaluator import Deliver
from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

STARTUP_TIMEOUT_S: Final = 10.0
SHUTDOWN_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.01


def loopback_listener() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, ready to hand to uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: uvicorn given a socket does not set it, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@contextmanager
def serving_asgi(app: Any, sock: socket.socket, *, lifespan: bool = False) -> Iterator[str]:
    """Serve ``app`` on ``sock`` until the block ends; yields ``http://127.0.0.1:<port>``.

    With ``lifespan`` the app's startup and shutdown hooks run too. The socket is
    closed when the server has stopped.
    """
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on" if lifespan else "off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for _ in range(int(STARTUP_TIMEOUT_S / POLL_S)):
            if server.started or time.monotonic() > deadline or not thread.is_alive():
                break
            time.sleep(POLL_S)
        if not server.started:
            raise RuntimeError("the test server did not start")
        yield f"http://127.0.0.1:{port_of(sock)}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        sock.close()


@dataclass(frozen=True, slots=True)
class LiveServer:
    """A running Threadline server: its address, app, store and settings."""

    url: str
    app: FastAPI
    store: DuckDBStore
    settings: ServerSettings

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    @property
    def logs_url(self) -> str:
        return f"{self.url}/v1/logs"

    @property
    def sampling_url(self) -> str:
        return f"{self.url}/api/sampling"


@contextmanager
def live_server(
    db: Path,
    *,
    lifespan: bool = False,
    rollups: bool = True,
    deliver: Deliver | None = None,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """``create_app`` over a real DuckDB file at ``db``, served until the block ends.

    ``overrides`` are ServerSettings fields; host and port are the listener's, and
    ``workers`` is 1 unless given.
    ``deliver`` receives the alert notices. ``rollups=False`` gives a store that answers
    fleet views by scanning spans. The store is closed after the server stops.
    """
    sock = loopback_listener()
    # Decoding in the test process unless a test asks for worker processes: they take
    # a second or more to start on a loaded machine, and most tests are not about them.
    overrides.setdefault("workers", 1)
    settings = ServerSettings(host="127.0.0.1", port=port_of(sock), db=db, **overrides)
    store = DuckDBStore(db, max_pending_batches=settings.write_queue_batches, rollups=rollups)
    try:
        app = create_app(settings, store, deliver=deliver)
        with serving_asgi(app, sock, lifespan=lifespan) as url:
            try:
                yield LiveServer(url, app, store, settings)
            finally:
                # Without lifespan events no shutdown hook runs, yet a notice starts the
                # alert dispatcher: stopped here, no worker goes on retrying a receiver
                # into the tests after this one.
                app.state.alert_dispatcher.stop()
    finally:
        sock.close()
        store.close()
